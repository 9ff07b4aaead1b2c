namespace Wal.Format;

/// <summary>Reads protobuf fields from a span; every malformed input ends in <see cref="TryReadField"/> returning false.</summary>
internal ref struct ProtoReader(ReadOnlySpan<byte> data)
{
    private readonly ReadOnlySpan<byte> _data = data;
    private int _pos;

    public readonly bool AtEnd => _pos >= _data.Length;

    /// <summary>Reads the next field: its number, wire type, varint value or length-delimited bytes. Fixed-width and unknown fields are skipped over but still returned.</summary>
    public bool TryReadField(out int field, out int wireType, out ulong value, out ReadOnlySpan<byte> bytes)
    {
        field = 0;
        wireType = 0;
        value = 0;
        bytes = default;
        if (!TryReadVarint(out var tag))
            return false;
        // Field 0 and field numbers beyond 2^29-1 are illegal, as gogo's unmarshaller says.
        if (tag >> 3 == 0 || tag >> 3 > int.MaxValue >> 2)
            return false;
        field = (int)(tag >> 3);
        wireType = (int)(tag & 7);
        switch (wireType)
        {
            case ProtoWire.WireVarint:
                return TryReadVarint(out value);
            case ProtoWire.WireFixed64:
                return Skip(8);
            case ProtoWire.WireFixed32:
                return Skip(4);
            case ProtoWire.WireLengthDelimited:
                if (!TryReadVarint(out var len) || len > (ulong)(_data.Length - _pos))
                    return false;
                bytes = _data.Slice(_pos, (int)len);
                _pos += (int)len;
                return true;
            default:
                // Groups (3, 4) are not used by any WAL message; 6 and 7 do not exist.
                return false;
        }
    }

    private bool Skip(int n)
    {
        if (_data.Length - _pos < n)
            return false;
        _pos += n;
        return true;
    }

    private bool TryReadVarint(out ulong value)
    {
        value = 0;
        for (int shift = 0; shift < 64; shift += 7)
        {
            if (_pos >= _data.Length)
                return false;
            byte b = _data[_pos++];
            value |= (ulong)(b & 0x7F) << shift;
            if (b < 0x80)
                return true;
        }
        return false;
    }
}
