using Wal.Format;
using Wal.Reading;

namespace Wal.Log;

/// <summary>
/// Reads a log once, as ReadAll does and with ReadAll's rules (<see cref="ReadRules"/>), but
/// keeps where each entry lies instead of the entry: the index a <see cref="RaftLog"/> answers
/// from. Entries at or below the snapshot are skipped; an entry whose index is present
/// replaces it and everything after it; an index past the end is SliceOutOfRange. Raft's
/// invariants are checked as ReadAll checks them (when <c>strict</c>), and what they learn is
/// handed to the writer, which refuses Saves that would break them.
/// </summary>
internal static class IndexScan
{
    /// <summary>What the scan found.</summary>
    /// <param name="Runs">Where the entries after the snapshot lie.</param>
    /// <param name="Metadata">The log's metadata.</param>
    /// <param name="State">The last hard state.</param>
    /// <param name="LastIndex">The index of the last entry record read, from which a cut names the next segment.</param>
    /// <param name="Invariants">What raft's invariants learnt from the records, for the writer.</param>
    public readonly record struct Found(IndexRun[] Runs, byte[] Metadata, HardState State, ulong LastIndex, RaftInvariants Invariants);

    /// <summary>
    /// Reads every record of <paramref name="segments"/> through <paramref name="reader"/> (which
    /// reads the same files, in the same order) to a clean end.
    /// </summary>
    /// <exception cref="WalException">As ReadAll in write mode, SnapshotNotFound without contents.</exception>
    public static Found Read(SegmentReader reader, IReadOnlyList<LogSegment> segments, Snapshot start, bool strict)
    {
        var invariants = RaftInvariants.After([.. segments.Select(s => s.FileName)]);
        var runs = new List<TailRun>();
        ulong count = 0;
        ulong lastIndex = 0;
        var state = HardState.Empty;
        byte[]? metadata = null;
        bool match = false;
        int current = 0;
        Span<long> offset = stackalloc long[1];
        Span<ulong> term = stackalloc ulong[1];
        ReadStatus status;
        SegmentRecord record;
        while ((status = reader.Next(out record)) == ReadStatus.Record)
        {
            if (strict)
                ReadRules.KeepsInvariants(record, invariants.Segment(record.Segment));
            switch (record.Type)
            {
                case RecordType.Entry:
                    if (!RecordCodec.TryParseEntry(record.Data, out term[0], out ulong index, out var type, out _))
                        throw ReadRules.Corrupt(record, "an entry record's data is not a raftpb.Entry");
                    // The invariants look at the entry's coordinates and type only, not its data.
                    var entry = new Entry(term[0], index, type, ReadOnlyMemory<byte>.Empty);
                    if (strict)
                        ReadRules.KeepsInvariants(record, invariants.Violation(entry, checkGap: false));
                    invariants.Accept(entry);
                    if (index > start.Index)
                    {
                        // Compare without forming the position, which a huge index would overflow (CVE-2020-15112).
                        ulong up = index - start.Index - 1;
                        if (up > count)
                            throw new WalException(WalErrorKind.SliceOutOfRange,
                                $"Entry {index} in {record.Segment} leaves a gap: only {count} entries follow snapshot index {start.Index}.");
                        if (up < count)
                            Truncate(runs, index);
                        while (segments[current].FileName != record.Segment)
                            current++;
                        var segment = segments[current];
                        if (runs.Count == 0 || runs[^1].Segment != segment)
                            runs.Add(new TailRun(segment, index));
                        // The frame is in the file; readers may touch it through a mapping.
                        segment.Extend(record.End);
                        offset[0] = record.Offset;
                        runs[^1].Append(offset, term);
                        count = up + 1;
                    }
                    lastIndex = index;
                    break;
                case RecordType.State:
                    state = ReadRules.DecodeState(record);
                    if (strict)
                        ReadRules.KeepsInvariants(record, invariants.Violation(state));
                    invariants.Accept(state);
                    break;
                case RecordType.Metadata:
                    metadata = ReadRules.AcceptMetadata(record, metadata);
                    break;
                case RecordType.Crc:
                    break;
                case RecordType.Snapshot:
                    match |= ReadRules.MatchSnapshot(record, start);
                    invariants.Accept(ReadRules.DecodeSnapshot(record));
                    break;
                default:
                    throw ReadRules.UnknownType(record);
            }
        }
        if (status != ReadStatus.End)
            throw ReadRules.StatusError(status, reader, record);
        if (!match)
            throw new WalException(WalErrorKind.SnapshotNotFound,
                $"The WAL holds no snapshot record at index {start.Index}, term {start.Term}.");
        return new Found([.. runs.Select(r => r.Run.Trimmed())], metadata ?? [], state, lastIndex, invariants);
    }

    /// <summary>Drops the entries from <paramref name="index"/> on.</summary>
    private static void Truncate(List<TailRun> runs, ulong index)
    {
        while (runs.Count > 0 && runs[^1].First >= index)
            runs.RemoveAt(runs.Count - 1);
        if (runs.Count > 0 && runs[^1].Last >= index)
            runs[^1].Shrink((int)(index - runs[^1].First));
    }
}
