using System.Runtime.CompilerServices;
using Wal.Format;

namespace Wal.Reading;

/// <summary>
/// The checks etcd applies to records as they are read, in one place for every reader
/// (ReadAll, Verify, ValidSnapshotEntries, Repair, Scan), each with the error it gives.
/// </summary>
internal static class ReadRules
{
    /// <summary>Every metadata record must equal the first non-empty one; returns the metadata so far.</summary>
    public static byte[]? AcceptMetadata(in SegmentRecord record, byte[]? metadata)
    {
        var data = record.Data;
        if (metadata is not null && !data.SequenceEqual(metadata))
            throw new WalException(WalErrorKind.MetadataConflict,
                $"The metadata in {record.Segment} differs from the metadata before it.");
        // Go reads empty data as nil, which later metadata is not compared against.
        return data.IsEmpty ? null : data.ToArray();
    }

    /// <summary>Whether a snapshot record is the wanted one; the same index with another term is SnapshotMismatch.</summary>
    public static bool MatchSnapshot(in SegmentRecord record, Snapshot wanted)
    {
        var loaded = DecodeSnapshot(record);
        if (loaded.Index != wanted.Index)
            return false;
        if (loaded.Term != wanted.Term)
            throw new WalException(WalErrorKind.SnapshotMismatch,
                $"The WAL has a snapshot at index {loaded.Index} with term {loaded.Term}, not {wanted.Term}.");
        return true;
    }

    public static Snapshot DecodeSnapshot(in SegmentRecord record) =>
        RecordCodec.TryDecodeSnapshot(record.Data, out var snapshot)
            ? snapshot
            : throw Corrupt(record, "a snapshot record's data is not a walpb.Snapshot");

    public static HardState DecodeState(in SegmentRecord record) =>
        RecordCodec.TryDecodeHardState(record.Data, out var state)
            ? state
            : throw Corrupt(record, "a state record's data is not a raftpb.HardState");

    /// <summary>A record that breaks one of raft's invariants is damage the CRC cannot see (its type byte is outside it).</summary>
    public static void KeepsInvariants(in SegmentRecord record, string? violation)
    {
        if (violation is not null)
            throw Broken(record, violation);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static WalException Broken(in SegmentRecord record, string violation) =>
        Corrupt(record, $"{violation} (raft never writes this; a record's type byte is outside its CRC)");

    public static WalException UnknownType(in SegmentRecord record) =>
        Corrupt(record, $"unknown record type {record.Type:D}");

    /// <summary>
    /// The error for a reader status other than a record or a clean end; <paramref name="record"/>
    /// is the record returned beside <see cref="ReadStatus.ChainBroken"/>.
    /// </summary>
    public static WalException StatusError(ReadStatus status, SegmentReader reader, in SegmentRecord record) => status switch
    {
        ReadStatus.UnexpectedEof => new WalException(WalErrorKind.UnexpectedEof,
            $"{reader.CurrentSegment} ends in a torn or truncated record at offset {reader.Offset}; Repair can cut it off."),
        ReadStatus.CrcMismatch => new WalException(WalErrorKind.CrcMismatch,
            $"The record at offset {reader.Offset} of {reader.CurrentSegment} fails its CRC check: the WAL is corrupt."),
        ReadStatus.ChainBroken => new WalException(WalErrorKind.CrcMismatch,
            $"{record.Segment} starts with CRC {record.Crc:x8}, but the segment before it ended with {reader.Crc:x8}."),
        ReadStatus.TooLarge => new WalException(WalErrorKind.RecordTooLarge,
            $"The length word at offset {reader.Offset} of {reader.CurrentSegment} claims a record of 10 MiB or more, which etcd refuses to read: the WAL is corrupt."),
        _ => Corrupt(reader.CurrentSegment, reader.Offset, "the record cannot be decoded"),
    };

    /// <summary>A record that framed and chained correctly but whose content is damage, reported at the offset just past it.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static WalException Corrupt(in SegmentRecord record, string what) => Corrupt(record.Segment, record.End, what);

    private static WalException Corrupt(string segment, long offset, string what) =>
        new(WalErrorKind.CorruptRecord, $"Corrupt record in {segment} near offset {offset}: {what}.");
}
