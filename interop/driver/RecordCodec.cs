using System.Buffers;

namespace Wal.Interop;

/// <summary>
/// The drivers' own compact encoding of a <see cref="RaftRecord"/>: the kind byte, the kind's numbers as
/// LEB128 varints, then the data (entry or metadata) to the end. The third-party log frames
/// each record, so no length or checksum is needed here.
/// </summary>
public static class RecordCodec
{
    /// <summary>Writes the record's encoding to <paramref name="output"/>.</summary>
    /// <param name="record">The record.</param>
    /// <param name="output">Where the bytes go.</param>
    public static void Encode(in RaftRecord record, IBufferWriter<byte> output)
    {
        var span = output.GetSpan(1 + 4 * 10 + record.Data.Length);
        span[0] = (byte)record.Kind;
        var at = 1;

        switch (record.Kind)
        {
            case RecordKind.Metadata:
                break;
            case RecordKind.Entry:
                at += WriteVarint(span[at..], record.Term);
                at += WriteVarint(span[at..], record.Index);
                at += WriteVarint(span[at..], record.EntryType);
                break;
            case RecordKind.HardState:
                at += WriteVarint(span[at..], record.Term);
                at += WriteVarint(span[at..], record.Vote);
                at += WriteVarint(span[at..], record.Commit);
                break;
            case RecordKind.Snapshot:
                at += WriteVarint(span[at..], record.Index);
                at += WriteVarint(span[at..], record.Term);
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(record), record.Kind, "unknown record kind");
        }

        record.Data.Span.CopyTo(span[at..]);
        output.Advance(at + record.Data.Length);
    }

    /// <summary>Reads a record; its data is copied, so <paramref name="bytes"/> may be reused.</summary>
    /// <param name="bytes">One record's encoding, as the log gave it back.</param>
    /// <returns>The record.</returns>
    /// <exception cref="InvalidDataException">The bytes are not a record.</exception>
    public static RaftRecord Decode(ReadOnlySpan<byte> bytes)
    {
        if (bytes.IsEmpty)
        {
            throw new InvalidDataException("an empty record");
        }

        var kind = (RecordKind)bytes[0];
        var rest = bytes[1..];

        switch (kind)
        {
            case RecordKind.Metadata:
                return RaftRecord.OfMetadata(rest.ToArray());
            case RecordKind.Entry:
                {
                    var term = ReadVarint(ref rest);
                    var index = ReadVarint(ref rest);
                    var type = ReadVarint(ref rest);
                    return RaftRecord.OfEntry(term, index, type, rest.ToArray());
                }

            case RecordKind.HardState:
                {
                    var term = ReadVarint(ref rest);
                    var vote = ReadVarint(ref rest);
                    var commit = ReadVarint(ref rest);
                    return Exhausted(rest, RaftRecord.OfHardState(term, vote, commit));
                }

            case RecordKind.Snapshot:
                {
                    var index = ReadVarint(ref rest);
                    var term = ReadVarint(ref rest);
                    return Exhausted(rest, RaftRecord.OfSnapshot(index, term));
                }

            default:
                throw new InvalidDataException($"unknown record kind {bytes[0]}");
        }
    }

    private static RaftRecord Exhausted(ReadOnlySpan<byte> rest, RaftRecord record) =>
        rest.IsEmpty ? record : throw new InvalidDataException($"{rest.Length} bytes after a {record.Kind} record");

    private static int WriteVarint(Span<byte> span, ulong value)
    {
        var at = 0;

        while (value >= 0x80)
        {
            span[at++] = (byte)(value | 0x80);
            value >>= 7;
        }

        span[at++] = (byte)value;
        return at;
    }

    private static ulong ReadVarint(ref ReadOnlySpan<byte> bytes)
    {
        ulong value = 0;

        for (var i = 0; i < 10; i++)
        {
            if (i >= bytes.Length)
            {
                throw new InvalidDataException("a record ends inside a number");
            }

            var b = bytes[i];
            value |= (ulong)(b & 0x7F) << (7 * i);

            if (b < 0x80)
            {
                bytes = bytes[(i + 1)..];
                return value;
            }
        }

        throw new InvalidDataException("a number longer than 10 bytes");
    }
}
