using System.Runtime.CompilerServices;
using Google.Protobuf;
using Wal.Format.Protos;

namespace Wal.Format;

/// <summary>
/// Encodes and decodes walpb.Record and the messages records carry. Record, Entry and
/// HardState are done by hand on the hot path; Snapshot (with its ConfState) goes through
/// Google.Protobuf. Field order and presence follow etcd's gogo-generated marshallers:
/// non-nullable fields are always written, bytes fields only when non-empty.
/// </summary>
internal static class RecordCodec
{
    /// <summary>The largest encoded Entry without its data: four tags, three 10-byte varints, one length varint.</summary>
    public const int MaxEntryHeaderBytes = 4 + 10 + 10 + 10 + 10;

    /// <summary>The size of a record whose data is <paramref name="dataBytes"/> long.</summary>
    public static int RecordSize(uint crc, int dataBytes) =>
        2 + 1 + ProtoWire.VarintSize(crc) + (dataBytes > 0 ? 1 + ProtoWire.VarintSize((ulong)dataBytes) + dataBytes : 0);

    /// <summary>
    /// Writes a record whose data is <paramref name="head"/> followed by <paramref name="body"/>
    /// (split so an entry's payload is copied once, straight from the caller's memory).
    /// </summary>
    public static int WriteRecord(Span<byte> dst, RecordType type, uint crc, ReadOnlySpan<byte> head, ReadOnlySpan<byte> body)
    {
        int n = WriteRecordHead(dst, type, crc, head, head.Length + body.Length);
        body.CopyTo(dst[n..]);
        return n + body.Length;
    }

    /// <summary>
    /// Writes a record of <paramref name="dataBytes"/> bytes of data up to the end of the data's
    /// <paramref name="head"/>, and returns where its body goes (<see cref="DataOffset"/> plus the head).
    /// </summary>
    public static int WriteRecordHead(Span<byte> dst, RecordType type, uint crc, ReadOnlySpan<byte> head, int dataBytes)
    {
        int n = 0;
        dst[n++] = ProtoWire.Tag(1, ProtoWire.WireVarint);
        dst[n++] = (byte)type;
        dst[n++] = ProtoWire.Tag(2, ProtoWire.WireVarint);
        n += ProtoWire.WriteVarint(dst[n..], crc);
        if (dataBytes > 0)
        {
            dst[n++] = ProtoWire.Tag(3, ProtoWire.WireLengthDelimited);
            n += ProtoWire.WriteVarint(dst[n..], (ulong)dataBytes);
            head.CopyTo(dst[n..]);
            n += head.Length;
        }
        return n;
    }

    /// <summary>Where a record's data starts, for its crc and data length: the record's size less the data.</summary>
    public static int DataOffset(uint crc, int dataBytes) => RecordSize(crc, dataBytes) - dataBytes;

    /// <summary>The length of the header <see cref="WriteEntryHeader"/> writes for <paramref name="entry"/>, computed without writing it.</summary>
    public static int EntryHeaderSize(in Entry entry) =>
        3 + ProtoWire.VarintSize((ulong)(long)(int)entry.Type) + ProtoWire.VarintSize(entry.Term) + ProtoWire.VarintSize(entry.Index)
        + (entry.Data.IsEmpty ? 0 : 1 + ProtoWire.VarintSize((ulong)entry.Data.Length));

    /// <summary>
    /// The largest record <paramref name="entry"/> can become, for checking limits before anything
    /// is written: the crc varint is taken at its widest, so the answer does not depend on the chain.
    /// </summary>
    public static int MaxEntryRecordSize(in Entry entry) =>
        RecordSize(uint.MaxValue, EntryHeaderSize(entry) + entry.Data.Length);

    /// <summary>Writes raftpb.Entry without its payload; the payload (field 4) follows directly.</summary>
    public static int WriteEntryHeader(Span<byte> dst, in Entry entry)
    {
        int n = 0;
        dst[n++] = ProtoWire.Tag(1, ProtoWire.WireVarint);
        n += ProtoWire.WriteVarint(dst[n..], (ulong)(long)(int)entry.Type);
        dst[n++] = ProtoWire.Tag(2, ProtoWire.WireVarint);
        n += ProtoWire.WriteVarint(dst[n..], entry.Term);
        dst[n++] = ProtoWire.Tag(3, ProtoWire.WireVarint);
        n += ProtoWire.WriteVarint(dst[n..], entry.Index);
        if (!entry.Data.IsEmpty)
        {
            dst[n++] = ProtoWire.Tag(4, ProtoWire.WireLengthDelimited);
            n += ProtoWire.WriteVarint(dst[n..], (ulong)entry.Data.Length);
        }
        return n;
    }

    /// <summary>Encodes raftpb.HardState: all three fields, always.</summary>
    public static int WriteHardState(Span<byte> dst, in HardState state)
    {
        int n = 0;
        dst[n++] = ProtoWire.Tag(1, ProtoWire.WireVarint);
        n += ProtoWire.WriteVarint(dst[n..], state.Term);
        dst[n++] = ProtoWire.Tag(2, ProtoWire.WireVarint);
        n += ProtoWire.WriteVarint(dst[n..], state.Vote);
        dst[n++] = ProtoWire.Tag(3, ProtoWire.WireVarint);
        n += ProtoWire.WriteVarint(dst[n..], state.Commit);
        return n;
    }

    public const int MaxHardStateBytes = 3 * 11;

    /// <summary>Encodes walpb.Snapshot with Google.Protobuf.</summary>
    public static byte[] EncodeSnapshot(in Snapshot snapshot)
    {
        var message = new Protos.Snapshot { Index = snapshot.Index, Term = snapshot.Term };
        if (snapshot.ConfState is { } cs)
        {
            var pb = new Protos.ConfState { AutoLeave = cs.AutoLeave };
            pb.Voters.AddRange(cs.Voters);
            pb.Learners.AddRange(cs.Learners);
            pb.VotersOutgoing.AddRange(cs.VotersOutgoing);
            pb.LearnersNext.AddRange(cs.LearnersNext);
            message.ConfState = pb;
        }
        return message.ToByteArray();
    }

    /// <summary>
    /// Decodes a walpb.Record, refusing what etcd's gogo-generated Record.Unmarshal refuses and
    /// telling its two kinds of refusal apart: a field that runs past the end (io.ErrUnexpectedEOF,
    /// which etcd treats as a torn write) and anything else (which etcd reports as it is).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static RecordParse DecodeRecord(ReadOnlySpan<byte> bytes, out long type, out uint crc, out ReadOnlySpan<byte> data) =>
        TryDecodeRecordAsWritten(bytes, out type, out crc, out data) ? RecordParse.Ok : DecodeAnyRecord(bytes, out type, out crc, out data);

    /// <summary><see cref="DecodeRecord"/> for any layout gogo accepts: fields in any order, repeated, unknown ones skipped.</summary>
    private static RecordParse DecodeAnyRecord(ReadOnlySpan<byte> bytes, out long type, out uint crc, out ReadOnlySpan<byte> data)
    {
        type = 0;
        crc = 0;
        data = default;
        long pos = 0;
        while (pos < bytes.Length)
        {
            long fieldStart = pos;
            var parse = ProtoReader.ReadVarint(bytes, ref pos, out ulong tag);
            if (parse != RecordParse.Ok)
                return parse;
            int wire = (int)(tag & 7);
            int field = unchecked((int)(tag >> 3));
            if (wire == 4 || field <= 0)
                return RecordParse.Invalid;
            switch (field)
            {
                case 1 or 2:
                    if (wire != ProtoWire.WireVarint)
                        return RecordParse.Invalid;
                    parse = ProtoReader.ReadVarint(bytes, ref pos, out ulong value);
                    if (parse != RecordParse.Ok)
                        return parse;
                    if (field == 1)
                        type = unchecked((long)value);
                    else
                        crc = unchecked((uint)value);
                    break;
                case 3:
                    if (wire != ProtoWire.WireLengthDelimited)
                        return RecordParse.Invalid;
                    parse = ProtoReader.ReadVarint(bytes, ref pos, out ulong length);
                    if (parse != RecordParse.Ok)
                        return parse;
                    // Go holds the length in an int: a negative one, or one whose end wraps, is refused.
                    long end = unchecked(pos + (long)length);
                    if ((long)length < 0 || end < 0)
                        return RecordParse.Invalid;
                    if (end > bytes.Length)
                        return RecordParse.Truncated;
                    data = bytes[(int)pos..(int)end];
                    pos = end;
                    break;
                default:
                    parse = ProtoReader.SkipField(bytes, fieldStart, out pos);
                    if (parse != RecordParse.Ok)
                        return parse;
                    if (pos > bytes.Length)
                        return RecordParse.Truncated;
                    break;
            }
        }
        return RecordParse.Ok;
    }

    /// <summary>
    /// walpb.Record as etcd's marshaller (and this engine's) writes it: fields 1, 2 and, when
    /// there is data, 3 running to the end, once each in that order. Every record goes through
    /// here, so that layout is read straight; anything else (false) goes through
    /// <see cref="DecodeRecord"/>'s general loop, which reads these bytes the same way.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool TryDecodeRecordAsWritten(ReadOnlySpan<byte> bytes, out long type, out uint crc, out ReadOnlySpan<byte> data)
    {
        type = 0;
        crc = 0;
        data = default;
        int pos = 1;
        if (bytes.Length < 4 || bytes[0] != ProtoWire.Tag(1, ProtoWire.WireVarint)
            || !Varint(bytes, ref pos, out ulong typeValue)
            || !Tag(bytes, ref pos, ProtoWire.Tag(2, ProtoWire.WireVarint))
            || !Varint(bytes, ref pos, out ulong crcValue))
            return false;
        if (pos < bytes.Length)
        {
            if (!Tag(bytes, ref pos, ProtoWire.Tag(3, ProtoWire.WireLengthDelimited))
                || !Varint(bytes, ref pos, out ulong length) || length != (ulong)(bytes.Length - pos))
                return false;
            data = bytes[pos..];
        }
        type = unchecked((long)typeValue);
        crc = unchecked((uint)crcValue);
        return true;
    }

    /// <summary>Decodes a raftpb.Entry, copying its payload out of the read buffer.</summary>
    public static bool TryDecodeEntry(ReadOnlySpan<byte> bytes, out Entry entry)
    {
        entry = default;
        if (!TryParseEntry(bytes, out ulong term, out ulong index, out var type, out var data))
            return false;
        entry = new Entry(term, index, type, data.IsEmpty ? ReadOnlyMemory<byte>.Empty : data.ToArray());
        return true;
    }

    /// <summary>
    /// Parses a raftpb.Entry without copying anything: its payload stays a slice of
    /// <paramref name="bytes"/> (an index needs only the term and the index).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool TryParseEntry(ReadOnlySpan<byte> bytes, out ulong term, out ulong index, out EntryType entryType, out ReadOnlySpan<byte> data) =>
        TryParseEntryAsWritten(bytes, out term, out index, out entryType, out data)
        || TryParseAnyEntry(bytes, out term, out index, out entryType, out data);

    /// <summary><see cref="TryParseEntry"/> for any layout gogo accepts.</summary>
    private static bool TryParseAnyEntry(ReadOnlySpan<byte> bytes, out ulong term, out ulong index, out EntryType entryType, out ReadOnlySpan<byte> data)
    {
        term = 0;
        index = 0;
        entryType = default;
        long type = 0;
        data = default;
        var reader = new ProtoReader(bytes);
        while (!reader.AtEnd)
        {
            if (!reader.TryReadField(out int field, out int wire, out ulong value, out var payload))
                return false;
            switch (field)
            {
                case 1 when wire == ProtoWire.WireVarint:
                    type = (long)value;
                    break;
                case 2 when wire == ProtoWire.WireVarint:
                    term = value;
                    break;
                case 3 when wire == ProtoWire.WireVarint:
                    index = value;
                    break;
                case 4 when wire == ProtoWire.WireLengthDelimited:
                    data = payload;
                    break;
                case 1 or 2 or 3 or 4:
                    return false;
            }
        }
        entryType = (EntryType)(int)type;
        return true;
    }

    /// <summary>
    /// The entry as etcd's marshaller (and this engine's) writes it: fields 1, 2, 3 and, when
    /// there is a payload, 4, in that order, once each, nothing after. Every entry of a log goes
    /// through here, so that layout is read straight; anything else (false) goes through the
    /// general loop, which reads these bytes the same way.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool TryParseEntryAsWritten(ReadOnlySpan<byte> bytes, out ulong term, out ulong index, out EntryType entryType, out ReadOnlySpan<byte> data)
    {
        term = 0;
        index = 0;
        entryType = default;
        data = default;
        int pos = 0;
        if (!(Tag(bytes, ref pos, 0x08) && Varint(bytes, ref pos, out ulong type)
              && Tag(bytes, ref pos, 0x10) && Varint(bytes, ref pos, out term)
              && Tag(bytes, ref pos, 0x18) && Varint(bytes, ref pos, out index)))
            return false;
        if (pos < bytes.Length)
        {
            if (!(Tag(bytes, ref pos, 0x22) && Varint(bytes, ref pos, out ulong length))
                || length != (ulong)(bytes.Length - pos))
                return false;
            data = bytes[pos..];
        }
        entryType = (EntryType)(int)(long)type;
        return true;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool Tag(ReadOnlySpan<byte> bytes, ref int pos, byte tag)
    {
        if ((uint)pos >= (uint)bytes.Length || bytes[pos] != tag)
            return false;
        pos++;
        return true;
    }

    /// <summary>As <see cref="ProtoReader.ReadVarint"/> reads a well-formed varint (at most ten bytes, the bits past 64 dropped); false for anything else.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool Varint(ReadOnlySpan<byte> bytes, ref int pos, out ulong value)
    {
        // Most varints in a log are one byte long: a type, a term, a short length.
        if ((uint)pos < (uint)bytes.Length && bytes[pos] < 0x80)
        {
            value = bytes[pos++];
            return true;
        }
        // A crc and a large index take up to five bytes: read straight when they lie in the bytes.
        if ((uint)pos + 5 <= (uint)bytes.Length)
        {
            var five = bytes.Slice(pos, 5);
            ulong v = (ulong)(five[0] & 0x7Fu) | (ulong)(five[1] & 0x7Fu) << 7;
            if (five[1] < 0x80)
            {
                value = v;
                pos += 2;
                return true;
            }
            v |= (ulong)(five[2] & 0x7Fu) << 14;
            if (five[2] < 0x80)
            {
                value = v;
                pos += 3;
                return true;
            }
            v |= (ulong)(five[3] & 0x7Fu) << 21;
            if (five[3] < 0x80)
            {
                value = v;
                pos += 4;
                return true;
            }
            v |= (ulong)(five[4] & 0x7Fu) << 28;
            if (five[4] < 0x80)
            {
                value = v;
                pos += 5;
                return true;
            }
        }
        // Returned rather than passed by reference, so the caller's position stays in a register.
        (value, int next) = LongVarint(bytes, pos);
        if (next < 0)
            return false;
        pos = next;
        return true;
    }

    /// <summary>A varint of any length from <paramref name="pos"/>, and where it ends (-1 when it is not a well-formed one).</summary>
    private static (ulong Value, int Next) LongVarint(ReadOnlySpan<byte> bytes, int pos)
    {
        ulong value = 0;
        for (int shift = 0; shift < 64; shift += 7)
        {
            if ((uint)pos >= (uint)bytes.Length)
                return (0, -1);
            byte b = bytes[pos++];
            value |= (ulong)(b & 0x7F) << shift;
            if (b < 0x80)
                return (value, pos);
        }
        return (0, -1);
    }

    /// <summary>Decodes a raftpb.HardState.</summary>
    public static bool TryDecodeHardState(ReadOnlySpan<byte> bytes, out HardState state)
    {
        state = default;
        ulong term = 0, vote = 0, commit = 0;
        var reader = new ProtoReader(bytes);
        while (!reader.AtEnd)
        {
            if (!reader.TryReadField(out int field, out int wire, out ulong value, out _))
                return false;
            switch (field)
            {
                case 1 when wire == ProtoWire.WireVarint:
                    term = value;
                    break;
                case 2 when wire == ProtoWire.WireVarint:
                    vote = value;
                    break;
                case 3 when wire == ProtoWire.WireVarint:
                    commit = value;
                    break;
                case 1 or 2 or 3:
                    return false;
            }
        }
        state = new HardState(term, vote, commit);
        return true;
    }

    /// <summary>
    /// Decodes a walpb.Snapshot as etcd 3.4's gogo code does: index 1 and term 2 read as the
    /// entry's fields are, anything else skipped as unknown. etcd 3.5 adds conf_state (field 3);
    /// it is decoded through Google.Protobuf when it can be, its occurrences merged as protobuf
    /// merges a message field, and otherwise skipped as 3.4 skips it, so the engine accepts and
    /// refuses exactly the records 3.4 does.
    /// </summary>
    public static bool TryDecodeSnapshot(ReadOnlySpan<byte> bytes, out Snapshot snapshot)
    {
        snapshot = default;
        ulong index = 0, term = 0;
        Protos.ConfState? pb = null;
        bool confStateBroken = false;
        var reader = new ProtoReader(bytes);
        while (!reader.AtEnd)
        {
            if (!reader.TryReadField(out int field, out int wire, out ulong value, out var payload))
                return false;
            switch (field)
            {
                case 1 when wire == ProtoWire.WireVarint:
                    index = value;
                    break;
                case 2 when wire == ProtoWire.WireVarint:
                    term = value;
                    break;
                case 3 when wire == ProtoWire.WireLengthDelimited && !confStateBroken:
                    pb ??= new Protos.ConfState();
                    try
                    {
                        pb.MergeFrom(payload);
                    }
                    catch (InvalidProtocolBufferException)
                    {
                        confStateBroken = true;
                    }
                    break;
                case 1 or 2:
                    return false;
            }
        }
        ConfState? cs = pb is null || confStateBroken
            ? null
            : new ConfState(pb.Voters, pb.Learners, pb.VotersOutgoing, pb.LearnersNext, pb.AutoLeave);
        snapshot = new Snapshot(index, term, cs);
        return true;
    }
}
