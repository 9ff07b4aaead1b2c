using Wal.Format;

namespace Wal;

/// <summary>
/// One record as it lies in a segment, for tools that show a WAL record by record
/// (<see cref="WalDirectory.Scan(string, WalOptions?)"/>). Its CRC has been checked against the chain.
/// </summary>
/// <param name="Segment">The segment file's name.</param>
/// <param name="Offset">Where the record's frame starts in the segment.</param>
/// <param name="FrameBytes">The frame's length: the 8-byte length word, the record and its padding.</param>
/// <param name="Type">The record's type; a value outside <see cref="RecordType"/>'s names is damage.</param>
/// <param name="Crc">The record's crc field.</param>
/// <param name="Data">The record's payload (a copy).</param>
public readonly record struct WalRecord(string Segment, long Offset, int FrameBytes, RecordType Type, uint Crc, ReadOnlyMemory<byte> Data)
{
    /// <summary>Decodes the payload of an <see cref="RecordType.Entry"/> record.</summary>
    /// <exception cref="WalException">CorruptRecord when the payload is not a raftpb.Entry.</exception>
    public Entry ToEntry() =>
        RecordCodec.TryDecodeEntry(Data.Span, out var entry) ? entry : throw NotA("raftpb.Entry");

    /// <summary>Decodes the payload of a <see cref="RecordType.State"/> record.</summary>
    /// <exception cref="WalException">CorruptRecord when the payload is not a raftpb.HardState.</exception>
    public HardState ToHardState() =>
        RecordCodec.TryDecodeHardState(Data.Span, out var state) ? state : throw NotA("raftpb.HardState");

    /// <summary>Decodes the payload of a <see cref="RecordType.Snapshot"/> record.</summary>
    /// <exception cref="WalException">CorruptRecord when the payload is not a walpb.Snapshot.</exception>
    public Snapshot ToSnapshot() =>
        RecordCodec.TryDecodeSnapshot(Data.Span, out var snapshot) ? snapshot : throw NotA("walpb.Snapshot");

    private WalException NotA(string message) =>
        new(WalErrorKind.CorruptRecord, $"The record at offset {Offset} of {Segment} is not a {message}.");
}
