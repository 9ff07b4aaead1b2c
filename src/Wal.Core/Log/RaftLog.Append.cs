using Wal.Log;

namespace Wal;

// The writing side of RaftLog: appends, snapshots, syncs and compaction, one at a time under
// the write gate, each publishing a new view for the readers.
public sealed partial class RaftLog
{
    /// <summary>
    /// Appends <paramref name="entries"/> and then <paramref name="state"/> (unless empty), with
    /// raft's conflict rule: when the first entry's index is at or below the last index, it and
    /// everything after it are replaced. As <see cref="WriteAheadLog.Save(HardState, ReadOnlySpan{Entry})"/>
    /// on disk (etcd's records, fdatasync when there are entries or the term or vote changed);
    /// readers see the new entries once they are synced, or once written if they ask for unsynced ones.
    /// </summary>
    /// <param name="entries">Consecutive entries, the first at most <see cref="LastIndex"/> + 1 and above the compacted index.</param>
    /// <param name="state">The hard state; <see cref="HardState.Empty"/> to leave it out.</param>
    /// <exception cref="WalException">InvalidArgument or RecordTooLarge (nothing written), Closed, Io or Failed.</exception>
    public void Append(ReadOnlySpan<Entry> entries, HardState state) => Append(entries, state, CancellationToken.None);

    /// <summary>
    /// <see cref="Append(ReadOnlySpan{Entry}, HardState)"/> on the thread pool, so the caller's
    /// thread does not wait on the write and the fdatasync. Cancellation is honoured only before
    /// the write starts; once it has, the Append runs to its end.
    /// </summary>
    /// <param name="entries">Consecutive entries; not to be changed until the task completes.</param>
    /// <param name="state">The hard state; <see cref="HardState.Empty"/> to leave it out.</param>
    /// <param name="cancellationToken">Cancels the Append if it has not started writing.</param>
    /// <returns>A task that completes when Append would have returned.</returns>
    /// <exception cref="OperationCanceledException">Cancelled before anything was written.</exception>
    /// <exception cref="WalException">As <see cref="Append(ReadOnlySpan{Entry}, HardState)"/>.</exception>
    public ValueTask AppendAsync(ReadOnlyMemory<Entry> entries, HardState state, CancellationToken cancellationToken = default)
    {
        if (cancellationToken.IsCancellationRequested)
            return ValueTask.FromCanceled(cancellationToken);
        return new ValueTask(Task.Run(() => Append(entries.Span, state, cancellationToken), cancellationToken));
    }

    private void Append(ReadOnlySpan<Entry> entries, HardState state, CancellationToken cancellationToken)
    {
        lock (_writeGate)
        {
            var view = Current();
            if (entries.IsEmpty && state.IsEmpty)
                return;
            cancellationToken.ThrowIfCancellationRequested();
            if (!entries.IsEmpty)
                CheckAppendable(view, entries);
            var segment = entries.IsEmpty ? null : TailSegment();
            if (_offsets.Length < entries.Length)
            {
                _offsets = new long[Math.Max(entries.Length, 2 * _offsets.Length)];
                _terms = new ulong[_offsets.Length];
            }
            for (int i = 0; i < entries.Length; i++)
                _terms[i] = entries[i].Term;
            _pendingFirst = entries.IsEmpty ? 0 : entries[0].Index;
            _pendingCount = entries.Length;
            _pendingSegment = segment;
            _pendingState = state;
            _written = null;
            try
            {
                _wal.Save(state, entries, _offsets.AsSpan(0, entries.Length), entries.IsEmpty ? null : _publishWritten, CancellationToken.None);
            }
            catch
            {
                // The log refuses writes from now on; what readers see goes back to what is durable.
                _tail = null;
                Volatile.Write(ref _view, view);
                _pendingSegment = null;
                throw;
            }
            var written = _written ?? Applied(view);
            _written = null;
            _pendingSegment = null;
            Volatile.Write(ref _view, written with { DurableIndex = written.LastIndex });
        }
    }

    /// <summary>Appends entries and a hard state; see <see cref="Append(ReadOnlySpan{Entry}, HardState)"/>.</summary>
    /// <param name="entries">Consecutive entries.</param>
    /// <param name="state">The hard state; <see cref="HardState.Empty"/> to leave it out.</param>
    public void Append(IEnumerable<Entry> entries, HardState state)
    {
        ArgumentNullException.ThrowIfNull(entries);
        Append(entries is Entry[] array ? array : [.. entries], state);
    }

    /// <summary>
    /// Records a raft snapshot at <paramref name="snapshot"/> (a marker, synced), as
    /// <see cref="WriteAheadLog.SaveSnapshot"/>; it becomes <see cref="Snapshot"/>, to which the
    /// log can be compacted. A snapshot past <see cref="LastIndex"/> is one a follower installs
    /// from its leader: the log then starts after it, as raft's storage does when it applies
    /// one (<see cref="FirstIndex"/> is its index + 1, <see cref="LastIndex"/> its index,
    /// <see cref="Term"/> answers its term there), the entries before it are dropped and the
    /// segments nothing needs removed (as <see cref="CompactTo"/> removes them), and appends go
    /// on from its index + 1. An open at it finds the log the same: the record goes at the head
    /// of a new segment (a cut), where a read at it starts, so none of the dropped entries is
    /// read back, not even one that etcd's ReadAll would return because the overwrite that
    /// replaced it lies at or below the snapshot.
    /// </summary>
    /// <param name="snapshot">The snapshot's index, term and membership.</param>
    /// <exception cref="WalException">Closed, Io or Failed.</exception>
    public void SaveSnapshot(Snapshot snapshot)
    {
        lock (_writeGate)
        {
            var view = Current();
            if (snapshot.Index <= view.LastIndex)
            {
                _wal.SaveSnapshot(snapshot);
                Volatile.Write(ref _view, view with { Snapshot = snapshot });
                return;
            }
            // An install: raft drops every entry, but the files keep them, and an entry above the
            // snapshot that an overwrite at or below it replaced would come back at the next open
            // (ReadAll skips that overwrite). In a segment of its own the record is where an open
            // at it starts, after all of them.
            _wal.SaveSnapshotInNewSegment(snapshot);
            // Appends hold the gate, so nothing is written but not yet synced here.
            _tail = null;
            var installed = view with
            {
                Runs = [],
                CompactedIndex = snapshot.Index,
                CompactedTerm = snapshot.Term,
                LastIndex = snapshot.Index,
                DurableIndex = snapshot.Index,
                Snapshot = snapshot,
            };
            Volatile.Write(ref _view, installed);
            try
            {
                // The new segment is the one to keep from: the entries before it go with their files.
                TailSegment();
            }
            catch (Exception ex) when (ex is not WalException)
            {
                throw WalException.Io($"opening the segment {_wal.TailName} of {Directory} for reading", ex);
            }
            RemoveSegmentsBefore(KeepFrom(installed));
        }
    }

    /// <summary>Writes out and fdatasyncs what is buffered (a hard state saved without entries may still be), as <see cref="WriteAheadLog.Sync"/>.</summary>
    /// <exception cref="WalException">Closed, Io or Failed.</exception>
    public void Sync()
    {
        lock (_writeGate)
        {
            Current();
            _wal.Sync();
        }
    }

    /// <summary>
    /// Drops the entries up to and including <paramref name="index"/> (<see cref="FirstIndex"/>
    /// becomes <paramref name="index"/> + 1; <see cref="Term"/> still answers for
    /// <paramref name="index"/>), then removes the segment files nothing needs any more: those
    /// before the segment holding the first entry kept and before the one an open at
    /// <see cref="Snapshot"/> starts from, never the tail. Files go oldest first, and the
    /// directory is synced, so after a crash at any point the files left are a run etcd can
    /// open at the snapshot. A reader still in a removed segment reads on; the file closes when
    /// it is done.
    /// </summary>
    /// <param name="index">At most <see cref="Snapshot"/>'s index and <see cref="LastIndex"/>; at or below the compacted index nothing happens.</param>
    /// <exception cref="WalException">InvalidArgument, Closed or Io.</exception>
    public void CompactTo(ulong index)
    {
        lock (_writeGate)
        {
            var view = Current();
            if (index <= view.CompactedIndex)
                return;
            if (index > view.Snapshot.Index)
                throw WalException.InvalidArgument(
                    $"CompactTo({index}): the log can be compacted only up to its snapshot, at index {view.Snapshot.Index}.");
            if (index > view.DurableIndex)
                throw WalException.InvalidArgument($"CompactTo({index}): the last index is {view.DurableIndex}.");
            ulong term = view.Runs[view.RunOf(index)].TermOf(index);
            if (_tail is not null)
            {
                if (index >= _tail.Last)
                    _tail = null;
                else if (index >= _tail.First)
                    _tail.DropFront((int)(index + 1 - _tail.First));
            }
            var compacted = view with { Runs = view.RunsFrom(index + 1), CompactedIndex = index, CompactedTerm = term };
            Volatile.Write(ref _view, compacted);
            RemoveSegmentsBefore(KeepFrom(compacted));
        }
    }

    private static void CheckAppendable(LogView view, ReadOnlySpan<Entry> entries)
    {
        ulong first = entries[0].Index;
        if (first <= view.CompactedIndex)
            throw WalException.InvalidArgument(
                $"Entry {first} is at or below index {view.CompactedIndex}, which the log starts after (its snapshot or compaction).");
        if (first > view.LastIndex + 1)
            throw WalException.InvalidArgument($"Entry {first} leaves a gap after the last index, {view.LastIndex}.");
        for (int i = 1; i < entries.Length; i++)
        {
            if (entries[i].Index != first + (ulong)i)
                throw WalException.InvalidArgument($"Entries must be consecutive: entry {entries[i].Index} follows entry {entries[i - 1].Index}.");
        }
    }

    /// <summary>The tail segment for reading, opened after a cut the first time entries go to it.</summary>
    private LogSegment TailSegment()
    {
        var name = _wal.TailName;
        var last = _segments[^1];
        if (last.Name == name)
            return last;
        var next = OpenSegment(_fs, _mapSegments, Directory, name, name.ToString());
        _segments.Add(next);
        return next;
    }

    /// <summary>Runs between the write and the fdatasync: readers that accept unsynced entries see them from now on.</summary>
    private void PublishWritten()
    {
        // Before the view that indexes the new frames: a reader may touch them through a mapping from then on.
        _pendingSegment!.Extend(_wal.TailWrittenOffset);
        var view = Volatile.Read(ref _view);
        var written = Applied(view);
        _written = written;
        Volatile.Write(ref _view, written);
    }

    /// <summary>The view with the pending Append applied: the conflicting suffix cut, the entries added, durable up to what the cut left.</summary>
    private LogView Applied(LogView view)
    {
        if (_pendingCount == 0)
            return view with { State = _pendingState.IsEmpty ? view.State : _pendingState };
        var runs = view.Runs;
        ulong durable = view.DurableIndex;
        if (_pendingFirst <= view.LastIndex)
        {
            runs = view.RunsBelow(_pendingFirst);
            durable = Math.Min(durable, _pendingFirst - 1);
            // Slots past the cut are published in older views; the new entries go to fresh arrays.
            _tail = null;
        }
        else if (_tail is not null && _tail.Segment != _pendingSegment)
        {
            runs = [.. runs[..^1], _tail.Run.Trimmed()];
            _tail = null;
        }
        bool fresh = _tail is null;
        _tail ??= new TailRun(_pendingSegment!, _pendingFirst);
        _tail.Append(_offsets.AsSpan(0, _pendingCount), _terms.AsSpan(0, _pendingCount));
        runs = fresh ? [.. runs, _tail.Run] : [.. runs[..^1], _tail.Run];
        return view with
        {
            Runs = runs,
            LastIndex = _pendingFirst + (ulong)_pendingCount - 1,
            DurableIndex = durable,
            State = _pendingState.IsEmpty ? view.State : _pendingState,
        };
    }

    /// <summary>
    /// The first segment to keep: the one holding the first entry, the one an open at the
    /// snapshot starts from (the last whose first index is at or below it), the tail: whichever comes first.
    /// </summary>
    private ulong KeepFrom(LogView view)
    {
        ulong keep = _segments[^1].Name.Sequence;
        if (view.Runs.Length > 0)
            keep = Math.Min(keep, view.Runs[0].Segment.Name.Sequence);
        for (int i = _segments.Count - 1; i >= 0; i--)
        {
            if (_segments[i].Name.Index <= view.Snapshot.Index)
            {
                keep = Math.Min(keep, _segments[i].Name.Sequence);
                break;
            }
        }
        return keep;
    }

    private void RemoveSegmentsBefore(ulong sequence)
    {
        int doomed = 0;
        while (doomed < _segments.Count - 1 && _segments[doomed].Name.Sequence < sequence)
            doomed++;
        if (doomed == 0 && _older.Count == 0)
            return;
        try
        {
            _wal.ReleaseSegmentsBefore(sequence);
            // Oldest first: a crash leaves the newer segments, still a run without a gap.
            foreach (var name in _older)
                _fs.RemoveFile(Path.Combine(Directory, name));
            _older.Clear();
            for (int i = 0; i < doomed; i++)
                _fs.RemoveFile(Path.Combine(Directory, _segments[i].FileName));
            _fs.SyncDirectory(Directory);
        }
        catch (Exception ex) when (ex is not WalException)
        {
            throw WalException.Io($"removing compacted segments of {Directory}", ex);
        }
        finally
        {
            for (int i = 0; i < doomed; i++)
                _segments[i].Release();
            _segments.RemoveRange(0, doomed);
        }
    }
}
