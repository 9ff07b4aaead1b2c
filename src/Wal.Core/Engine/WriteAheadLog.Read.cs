using Wal.Engine;
using Wal.Reading;

namespace Wal;

public sealed partial class WriteAheadLog
{
    /// <summary>
    /// Reads the log from the snapshot it was opened at, with etcd's rules: entries at or below
    /// the snapshot are skipped; an entry whose index is already present replaces that entry
    /// and all after it; the last hard state wins. In write mode the log must read to its end,
    /// and whatever follows the last valid record is zeroed so new records never sit before
    /// stale ones; the log then appends. Can be called once.
    /// </summary>
    /// <returns>The metadata, the last hard state and the entries after the snapshot.</returns>
    /// <exception cref="WalException">
    /// SnapshotNotFound (with <see cref="WalException.Contents"/> set, and the log still ready to
    /// append), SnapshotMismatch, MetadataConflict, CrcMismatch, SliceOutOfRange, CorruptRecord,
    /// UnexpectedEof (write mode: a torn last record, which <see cref="WalDirectory.Repair"/> cuts off), Io,
    /// InvalidState or Closed.
    /// </exception>
    public ReadAllResult ReadAll()
    {
        lock (_gate)
        {
            if (_closed)
                throw new WalException(WalErrorKind.Closed, "The WAL is closed.");
            if (_pending is null || _readFailed)
                throw WalException.InvalidState("ReadAll can be called once, right after Open or OpenForRead.");
            try
            {
                return Replay(_pending);
            }
            catch (WalException ex) when (ex.Kind != WalErrorKind.SnapshotNotFound)
            {
                _readFailed = true;
                throw;
            }
            catch (Exception ex) when (ex is not WalException)
            {
                _readFailed = true;
                throw WalException.Io($"reading the WAL in {Directory}", ex);
            }
        }
    }

    private ReadAllResult Replay(PendingRead pending)
    {
        var reader = pending.Reader;
        var start = pending.Start;
        var entries = new List<Entry>();
        var state = HardState.Empty;
        byte[]? metadata = null;
        bool match = false;
        var invariants = pending.Invariants;
        bool strict = _options.CheckRaftInvariants;
        ReadStatus status;
        SegmentRecord record;
        while ((status = reader.Next(out record)) == ReadStatus.Record)
        {
            if (strict)
                ReadRules.KeepsInvariants(record, invariants.Segment(record.Segment));
            switch (record.Type)
            {
                case RecordType.Entry:
                    var entry = ReadRules.DecodeEntry(record);
                    if (strict)
                        ReadRules.KeepsInvariants(record, invariants.Violation(entry, checkGap: false));
                    invariants.Accept(entry);
                    if (entry.Index > start.Index)
                    {
                        // Compare without forming the position, which a huge index would overflow (CVE-2020-15112).
                        ulong up = entry.Index - start.Index - 1;
                        if (up > (ulong)entries.Count)
                            throw new WalException(WalErrorKind.SliceOutOfRange,
                                $"Entry {entry.Index} in {record.Segment} leaves a gap: only {entries.Count} entries follow snapshot index {start.Index}.");
                        entries.RemoveRange((int)up, entries.Count - (int)up);
                        entries.Add(entry);
                    }
                    _lastIndex = entry.Index;
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

        // A reader may stop at a torn last record: the writer may be in the middle of it.
        if (status != ReadStatus.End && (pending.Write || status != ReadStatus.UnexpectedEof))
            throw ReadRules.StatusError(status, reader, record);

        byte[] kept = metadata ?? [];
        if (pending.Write)
        {
            var segments = pending.Segments;
            _writer = SegmentWriter.Resume(segments[^1], reader.Offset, reader.Crc, kept, _lastIndex);
            // The tail is the writer's now; the segments before it stay open for their locks.
            segments.RemoveAt(segments.Count - 1);
            _locked.AddRange(segments);
            segments.Clear();
        }
        else
        {
            pending.Dispose();
        }
        _pending = null;
        _invariants = invariants;

        var result = new ReadAllResult(kept, state, entries);
        if (!match)
            throw new WalException(WalErrorKind.SnapshotNotFound,
                $"The WAL holds no snapshot record at index {start.Index}, term {start.Term}.")
            { Contents = result };
        return result;
    }
}
