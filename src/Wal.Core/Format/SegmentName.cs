using System.Globalization;

namespace Wal.Format;

/// <summary>A segment file's name, "%016x-%016x.wal": sequence number, then the index of the first entry that may follow.</summary>
internal readonly record struct SegmentName(ulong Sequence, ulong Index)
{
    /// <summary>The file name.</summary>
    public override string ToString() => $"{Sequence:x16}-{Index:x16}{Layout.SegmentExtension}";

    /// <summary>
    /// Parses a segment name. Only the exact form etcd writes is accepted (16 lower- or
    /// upper-case hex digits each); anything else in the directory is not a segment.
    /// </summary>
    public static bool TryParse(string fileName, out SegmentName name)
    {
        name = default;
        // 16 + 1 + 16 + ".wal"
        if (fileName.Length != 37 || fileName[16] != '-' || !fileName.EndsWith(Layout.SegmentExtension, StringComparison.Ordinal))
            return false;
        if (!ulong.TryParse(fileName.AsSpan(0, 16), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var seq)
            || !ulong.TryParse(fileName.AsSpan(17, 16), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var index))
            return false;
        name = new SegmentName(seq, index);
        return true;
    }
}
