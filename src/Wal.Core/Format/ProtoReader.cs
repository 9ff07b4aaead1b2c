namespace Wal.Format;

/// <summary>
/// Reads protobuf as gogo's generated Unmarshal methods do (etcd 3.4's walpb and raftpb), so
/// the engine accepts and refuses exactly what etcd does: fields in any order, the last of a
/// repeated scalar winning, unknown fields of every wire type skipped (groups included), the
/// field number kept in 32 bits. Every malformed input ends in a refusal, never an exception.
/// </summary>
internal ref struct ProtoReader(ReadOnlySpan<byte> data)
{
    private const int WireStartGroup = 3;
    private const int WireEndGroup = 4;

    private readonly ReadOnlySpan<byte> _data = data;
    private int _pos;

    public readonly bool AtEnd => _pos >= _data.Length;

    /// <summary>
    /// Reads the next field: its number, wire type, and its varint value or length-delimited
    /// bytes. Fixed-width fields and groups are skipped over but still returned, so the caller
    /// can refuse a known field that has the wrong wire type, as gogo does.
    /// </summary>
    public bool TryReadField(out int field, out int wireType, out ulong value, out ReadOnlySpan<byte> bytes)
    {
        field = 0;
        wireType = 0;
        value = 0;
        bytes = default;
        long start = _pos;
        long pos = _pos;
        if (ReadVarint(_data, ref pos, out ulong tag) != RecordParse.Ok)
            return false;
        // gogo converts the field number to an int32: higher bits are dropped, and 0 or a number
        // that wraps negative is an illegal tag. An end-group tag outside a group is refused too.
        // Stryker disable once Bitwise : >> and >>> agree on a ulong
        field = unchecked((int)(tag >> 3));
        wireType = (int)(tag & 7);
        if (wireType == WireEndGroup || field <= 0)
            return false;
        switch (wireType)
        {
            case ProtoWire.WireVarint:
                if (ReadVarint(_data, ref pos, out value) != RecordParse.Ok)
                    return false;
                break;
            case ProtoWire.WireLengthDelimited:
                if (ReadVarint(_data, ref pos, out ulong len) != RecordParse.Ok || len > (ulong)(_data.Length - pos))
                    return false;
                bytes = _data.Slice((int)pos, (int)len);
                pos += (long)len;
                break;
            default:
                // gogo skips a field it does not know from its tag, then checks the end against the message's.
                if (SkipField(_data, start, out pos) != RecordParse.Ok || pos > _data.Length)
                    return false;
                break;
        }
        _pos = (int)pos;
        return true;
    }

    /// <summary>
    /// A varint as gogo reads one: at most ten bytes (a longer one is an integer overflow), and
    /// running past the end is <see cref="RecordParse.Truncated"/> (io.ErrUnexpectedEOF).
    /// </summary>
    public static RecordParse ReadVarint(ReadOnlySpan<byte> bytes, ref long pos, out ulong value)
    {
        value = 0;
        for (int shift = 0; ; shift += 7)
        {
            // Stryker disable once Equality : shift is a multiple of 7, never 64
            if (shift >= 64)
                return RecordParse.Invalid;
            if (pos >= bytes.Length)
                return RecordParse.Truncated;
            byte b = bytes[(int)pos++];
            // Stryker disable once Assignment : each 7-bit group lands on bits no earlier group set, so | and ^ agree
            value |= (ulong)(b & 0x7F) << shift;
            if (b < 0x80)
                return RecordParse.Ok;
        }
    }

    /// <summary>
    /// Skips the field whose tag starts at <paramref name="pos"/>, as gogo's generated skip
    /// functions do, groups included: fixed-width and length-delimited fields are skipped by
    /// arithmetic, so <paramref name="end"/> may lie past the bytes and the caller checks it.
    /// Go recurses into nested groups; this counts them instead, so nested group tags cannot
    /// exhaust the stack.
    /// </summary>
    public static RecordParse SkipField(ReadOnlySpan<byte> bytes, long pos, out long end)
    {
        end = 0;
        int depth = 0;
        while (true)
        {
            var parse = ReadVarint(bytes, ref pos, out ulong tag);
            if (parse != RecordParse.Ok)
                return parse;
            switch ((int)(tag & 7))
            {
                case ProtoWire.WireVarint:
                    parse = ReadVarint(bytes, ref pos, out _);
                    if (parse != RecordParse.Ok)
                        return parse;
                    break;
                case ProtoWire.WireFixed64:
                    pos += 8;
                    break;
                case ProtoWire.WireLengthDelimited:
                    parse = ReadVarint(bytes, ref pos, out ulong length);
                    if (parse != RecordParse.Ok)
                        return parse;
                    pos = unchecked(pos + (long)length);
                    // Go holds the length in an int: a negative one, or one whose end wraps, is refused.
                    if ((long)length < 0)
                        return RecordParse.Invalid;
                    // Stryker disable once Equality : a tag was read, so pos is at least 1 before the length is added
                    if (pos < 0)
                        return RecordParse.Invalid;
                    break;
                case WireStartGroup:
                    depth++;
                    continue;
                case WireEndGroup:
                    // Stryker disable once Equality : an end-group tag at depth 0 is refused before the skip is called
                    if (depth > 0)
                        depth--;
                    break;
                case ProtoWire.WireFixed32:
                    pos += 4;
                    break;
                default:
                    return RecordParse.Invalid;
            }
            if (depth == 0)
            {
                end = pos;
                return RecordParse.Ok;
            }
        }
    }
}
