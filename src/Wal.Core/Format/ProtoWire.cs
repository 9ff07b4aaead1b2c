namespace Wal.Format;

/// <summary>
/// The few protobuf wire-format pieces the hot path encodes and decodes by hand, so that a
/// Save writes entries without allocating and a read does not build a message per record.
/// Tests hold these bytes equal to Google.Protobuf's for the same messages.
/// </summary>
internal static class ProtoWire
{
    public const int WireVarint = 0;
    public const int WireFixed64 = 1;
    public const int WireLengthDelimited = 2;
    public const int WireFixed32 = 5;

    public static int VarintSize(ulong value)
    {
        int n = 1;
        while (value >= 0x80)
        {
            value >>= 7;
            n++;
        }
        return n;
    }

    public static int WriteVarint(Span<byte> dst, ulong value)
    {
        int i = 0;
        while (value >= 0x80)
        {
            dst[i++] = (byte)(value | 0x80);
            value >>= 7;
        }
        dst[i++] = (byte)value;
        return i;
    }

    /// <summary>A single-byte tag (field numbers below 16).</summary>
    public static byte Tag(int field, int wireType) => (byte)((field << 3) | wireType);
}
