using Wal.Engine;
using Wal.Format;

namespace Wal;

public sealed partial class WriteAheadLog
{
    /// <summary>
    /// Appends <paramref name="entries"/> and then <paramref name="state"/> (unless it is empty),
    /// in one write in the common case. Returns after fdatasync when etcd's MustSync rule says so:
    /// entries were given, or the term or vote changed. Once the segment passes its size, the
    /// log is cut to a new segment before this returns. An empty state with no entries writes nothing.
    /// </summary>
    /// <param name="state">The raft hard state; <see cref="HardState.Empty"/> to leave it out.</param>
    /// <param name="entries">The entries, in the order raft produced them.</param>
    /// <exception cref="WalException">RecordTooLarge or InvalidArgument (nothing written), InvalidState, Closed, Io or Failed.</exception>
    public void Save(HardState state, ReadOnlySpan<Entry> entries) => Save(state, entries, default, null, CancellationToken.None);

    /// <summary>
    /// Save for a random-access index: <paramref name="offsets"/> (empty, or one per entry)
    /// receives where each entry's frame starts in the tail segment as it was before the call
    /// (<see cref="TailName"/>), and <paramref name="written"/> runs once the entries are in the
    /// file and before the fdatasync, so readers that accept unsynced entries can see them early.
    /// <paramref name="cancellationToken"/> is looked at once, after the lock is taken and before
    /// anything is written: a Save is cancelled whole or not at all.
    /// </summary>
    internal void Save(HardState state, ReadOnlySpan<Entry> entries, Span<long> offsets, Action? written, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            var writer = WritableWriter();
            cancellationToken.ThrowIfCancellationRequested();
            if (state.IsEmpty && entries.IsEmpty)
                return;
            foreach (ref readonly var entry in entries)
            {
                int recordBytes = RecordCodec.MaxEntryRecordSize(entry);
                if (recordBytes > _options.MaxRecordBytes)
                    throw new WalException(WalErrorKind.RecordTooLarge,
                        $"Entry {entry.Index} would be a record of {recordBytes} bytes, over the limit of {_options.MaxRecordBytes}.");
            }
            if (_options.CheckRaftInvariants && _invariants.SaveViolation(entries, state) is string violation)
                throw WalException.InvalidArgument($"Save refused, nothing written: {violation}.");
            bool mustSync = state.MustSync(writer.State, entries.Length);
            try
            {
                _invariants.Accept(entries, state);
                writer.Append(entries, state, offsets);
                // etcd decides on the flushed offset; bytes still buffered do not count yet.
                if (writer.FlushedOffset < _options.SegmentSizeBytes)
                {
                    if (mustSync)
                    {
                        // The same write and fdatasync as Sync, with the hook between them.
                        if (written is not null)
                        {
                            writer.Flush();
                            written();
                        }
                        writer.Sync();
                    }
                    return;
                }
                if (written is not null)
                {
                    writer.Flush();
                    written();
                }
                Cut();
            }
            catch (Exception ex)
            {
                throw FailClosed("saving entries", ex);
            }
        }
    }

    /// <summary>Appends entries and a hard state; see <see cref="Save(HardState, ReadOnlySpan{Entry})"/>.</summary>
    /// <param name="state">The raft hard state.</param>
    /// <param name="entries">The entries.</param>
    public void Save(HardState state, IEnumerable<Entry> entries)
    {
        // Stryker disable once Statement : spreading a null sequence raises ArgumentNullException too; this names the argument
        ArgumentNullException.ThrowIfNull(entries);
        Save(state, entries is Entry[] array ? array : [.. entries]);
    }

    /// <summary>
    /// Records that a raft snapshot was taken at <paramref name="snapshot"/>, so the log can be
    /// opened there, and syncs. etcd 3.5 stores the snapshot's <see cref="ConfState"/> too.
    /// </summary>
    /// <param name="snapshot">The snapshot's index, term and membership.</param>
    /// <exception cref="WalException">InvalidState, Closed, Io or Failed.</exception>
    public void SaveSnapshot(Snapshot snapshot)
    {
        lock (_gate)
        {
            var writer = WritableWriter();
            try
            {
                _invariants.Accept(snapshot);
                writer.AppendSnapshot(snapshot);
                writer.Sync();
            }
            catch (Exception ex)
            {
                throw FailClosed("saving a snapshot", ex);
            }
        }
    }

    /// <summary>
    /// <see cref="SaveSnapshot"/> at the head of a new segment: cuts first, so the segment the
    /// record lands in is named one past the last entry written, at or below a snapshot past it.
    /// A read at the snapshot (etcd's or the engine's) starts there and never meets the entries
    /// before the cut, which raft dropped when it installed the snapshot; in the old segment an
    /// entry above the snapshot that an overwrite at or below it replaced would be read back,
    /// since ReadAll skips that overwrite.
    /// </summary>
    internal void SaveSnapshotInNewSegment(Snapshot snapshot)
    {
        lock (_gate)
        {
            WritableWriter();
            try
            {
                _invariants.Accept(snapshot);
                Cut();
                _writer!.AppendSnapshot(snapshot);
                _writer.Sync();
            }
            catch (Exception ex)
            {
                throw FailClosed("saving a snapshot", ex);
            }
        }
    }

    /// <summary>Writes out everything buffered and fdatasyncs the last segment.</summary>
    /// <exception cref="WalException">InvalidState, Closed, Io or Failed.</exception>
    public void Sync()
    {
        lock (_gate)
        {
            var writer = WritableWriter();
            try
            {
                writer.Sync();
            }
            catch (Exception ex)
            {
                throw FailClosed("syncing", ex);
            }
        }
    }

    /// <summary>
    /// Releases (closes) the segments that hold only entries below <paramref name="index"/>,
    /// keeping the one that holds it, as etcd does once a snapshot makes them unnecessary.
    /// The last segment is never released. The files stay on disk.
    /// </summary>
    /// <param name="index">The first index still needed.</param>
    public void ReleaseLockTo(ulong index)
    {
        lock (_gate)
        {
            if (_closed)
                throw new WalException(WalErrorKind.Closed, "The WAL is closed.");
            if (_writer is null)
                return;
            // The segments are the locked ones and then the tail, which is never released.
            int count = _locked.Count + 1;
            int keepFrom = count - 1;
            for (int i = 0; i < count; i++)
            {
                var name = i < _locked.Count ? _locked[i].Name : _writer.Name;
                if (name.Index >= index)
                {
                    keepFrom = i - 1;
                    break;
                }
            }
            if (keepFrom <= 0)
                return;
            for (int i = 0; i < keepFrom; i++)
                _locked[i].File.Dispose();
            _locked.RemoveRange(0, keepFrom);
        }
    }

    /// <summary>The tail segment's name: where the next Save's entries go.</summary>
    internal SegmentName TailName
    {
        get
        {
            lock (_gate)
                return WritableWriter().Name;
        }
    }

    /// <summary>
    /// Where the bytes written to the tail segment's file end. In the written hook of a Save,
    /// which runs before any cut, that is past the Save's entries in the segment they went to.
    /// </summary>
    internal long TailWrittenOffset
    {
        // Stryker disable once Block : it only extends the mapped fast path; a reader past a segment's known end reads the same bytes with pread
        get
        {
            lock (_gate)
                return WritableWriter().WrittenOffset;
        }
    }

    /// <summary>
    /// Closes the held segments whose sequence number is below <paramref name="sequence"/>, so
    /// their files can be removed; the tail is never among them.
    /// </summary>
    internal void ReleaseSegmentsBefore(ulong sequence)
    {
        lock (_gate)
        {
            int count = 0;
            while (count < _locked.Count && _locked[count].Name.Sequence < sequence)
                _locked[count++].File.Dispose();
            _locked.RemoveRange(0, count);
        }
    }

    /// <summary>
    /// Closes the log: writes out what is buffered and fdatasyncs it (unless the log has failed),
    /// removes the prepared segment file, and releases every lock. Safe to call twice.
    /// </summary>
    /// <exception cref="WalException">Io, when the final sync fails; the files are closed all the same.</exception>
    public void Dispose()
    {
        lock (_gate)
        {
            if (_closed)
                return;
            var writer = _failure is null ? _writer : null;
            _closed = true;
            try
            {
                writer?.Sync();
            }
            catch (Exception ex)
            {
                _failure = ex;
                throw WalException.Io($"syncing {Directory} on close", ex);
            }
            finally
            {
                CloseFiles();
            }
        }
    }

    private SegmentWriter WritableWriter()
    {
        if (_closed)
            throw new WalException(WalErrorKind.Closed, "The WAL is closed.");
        if (_readFailed)
            throw WalException.InvalidState("ReadAll failed; close the WAL, repair or inspect it, and open it again.");
        if (_writer is null)
            throw WalException.InvalidState(_pending is { Write: true }
                ? "Call ReadAll before appending to a WAL opened with Open."
                : "The WAL was opened with OpenForRead and cannot be written.");
        if (_failure is not null)
            throw new WalException(WalErrorKind.Failed,
                $"An earlier write to {Directory} failed ({_failure.Message}); the WAL accepts no more writes. Close and reopen it.",
                _failure);
        return _writer;
    }

    private WalException FailClosed(string what, Exception ex)
    {
        _failure = ex;
        return ex as WalException ?? WalException.Io($"{what} in {Directory}", ex);
    }

    /// <summary>
    /// Closes the tail segment and starts the next, as etcd's cut: the old tail is sealed
    /// (truncated to its data and synced); the prepared file receives the chain's CRC, the
    /// metadata and the last hard state, is synced, renamed into place, and the directory
    /// synced, so the new segment appears whole or not at all.
    /// </summary>
    private void Cut()
    {
        long started = WalMetrics.Start();
        var tail = _writer!;
        tail.Seal();
        var prepared = _pipeline!.Take();
        var next = tail.Successor(prepared.File, SegmentWriter.SpaceAhead.Fresh(_options, ZeroAheadHere), out var sealedTail);
        _writer = next;
        _locked.Add(sealedTail);
        next.WriteHeader();
        next.Sync();
        _fs.Rename(prepared.Path, Path.Combine(Directory, next.Name.ToString()));
        _fs.SyncDirectory(Directory);
        WalMetrics.CutDone(started);
    }

    private void CloseFiles()
    {
        _pipeline?.Dispose();
        _pipeline = null;
        _pending?.Dispose();
        foreach (var segment in _locked)
            segment.File.Dispose();
        // Stryker disable once Statement : the log is closed for good here; nothing reads the list after
        _locked.Clear();
        _writer?.Dispose();
    }
}
