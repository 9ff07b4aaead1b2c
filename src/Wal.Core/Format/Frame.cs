using System.Runtime.CompilerServices;

namespace Wal.Format;

/// <summary>The 8-byte length word in front of every record.</summary>
internal static class Frame
{
    private const ulong LengthMask = (1UL << 56) - 1;

    /// <summary>The padding that makes a record of this length end on an 8-byte boundary.</summary>
    public static int PaddingFor(int recordBytes) => (8 - (recordBytes % 8)) % 8;

    /// <summary>The length word for a record of this length: the padding marker goes in the top byte.</summary>
    public static ulong Encode(int recordBytes)
    {
        ulong word = (ulong)recordBytes;
        int pad = PaddingFor(recordBytes);
        if (pad != 0)
            // Stryker disable once Assignment : the marker byte and the length's bits are disjoint, so | and ^ agree
            word |= (ulong)(0x80 | pad) << 56;
        return word;
    }

    /// <summary>
    /// Splits a length word into record length and padding. As in etcd, padding is read only
    /// when the marker bit is set, and only its low three bits count.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static (ulong RecordBytes, int PadBytes) Decode(ulong word)
    {
        ulong recordBytes = word & LengthMask;
        // Stryker disable once Equality,Bitwise : a zero word never reaches here (it ends the segment), and >> and >>> agree on a ulong
        int pad = (long)word < 0 ? (int)((word >> 56) & 0x7) : 0;
        return (recordBytes, pad);
    }

    /// <summary>The whole frame's size on disk.</summary>
    public static int SizeOf(int recordBytes) => Layout.FrameHeaderBytes + recordBytes + PaddingFor(recordBytes);

    /// <summary>
    /// Whether a frame body that starts at <paramref name="fileOffset"/> has a whole 512-byte
    /// sector of zeros (or the zero tail of one where the body ends): the mark of a write a crash
    /// cut short, which etcd tells apart from corruption.
    /// </summary>
    public static bool HasZeroSector(ReadOnlySpan<byte> body, long fileOffset)
    {
        int pos = 0;
        while (pos < body.Length)
        {
            int chunk = (int)Math.Min(Layout.SectorBytes - (fileOffset % Layout.SectorBytes), body.Length - pos);
            if (!body.Slice(pos, chunk).ContainsAnyExcept((byte)0))
                return true;
            fileOffset += chunk;
            pos += chunk;
        }
        return false;
    }
}
