using System.Globalization;

namespace Wal.Snap;

/// <summary>
/// The names of etcd's snapshot files: <c>%016x-%016x.snap</c> of the snapshot's term and index,
/// so that ordinal order is (term, index) order and the newest sorts last.
/// </summary>
public static class SnapName
{
    /// <summary>The suffix every snapshot file has.</summary>
    public const string Extension = ".snap";

    /// <summary>The suffix a file gets when it is found broken (etcd's loadSnap).</summary>
    public const string BrokenExtension = ".broken";

    /// <summary>The file name of the snapshot at <paramref name="term"/> and <paramref name="index"/>.</summary>
    /// <param name="term">The snapshot's term.</param>
    /// <param name="index">The snapshot's index.</param>
    /// <returns>The name, for example 0000000000000002-00000000000003ea.snap.</returns>
    public static string Format(ulong term, ulong index) => $"{term:x16}-{index:x16}{Extension}";

    /// <summary>Reads the term and index out of a name <see cref="Format"/> makes.</summary>
    /// <param name="name">A file name (no directory).</param>
    /// <param name="term">The term, when the name parses.</param>
    /// <param name="index">The index, when the name parses.</param>
    /// <returns>False when the name is not of the form term-index.snap in 16 hex digits each.</returns>
    public static bool TryParse(string name, out ulong term, out ulong index)
    {
        term = index = 0;
        return name.Length == 16 + 1 + 16 + Extension.Length
            && name.EndsWith(Extension, StringComparison.Ordinal)
            && name[16] == '-'
            && ulong.TryParse(name.AsSpan(0, 16), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out term)
            && ulong.TryParse(name.AsSpan(17, 16), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out index);
    }
}
