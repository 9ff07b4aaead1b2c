using Wal.Engine;
using Wal.Format;
using Wal.Log;
using Wal.Reading;
using Wal.Storage;

namespace Wal;

/// <summary>
/// A raft log over an etcd-format WAL directory with random access: what raft's Storage asks
/// (<see cref="FirstIndex"/>, <see cref="LastIndex"/>, <see cref="Term"/>,
/// <see cref="GetEntries"/>, <see cref="HardState"/>, <see cref="Snapshot"/>) answered from an
/// index of where each entry lies (16 bytes an entry), reading entry data from the files on
/// demand; and what raft's log needs written (<see cref="Append(ReadOnlySpan{Entry}, HardState)"/>, <see cref="SaveSnapshot"/>,
/// <see cref="CompactTo"/>) through the same writer as <see cref="WriteAheadLog"/>, so the
/// files stay etcd's, readable by etcd and <c>wal dump</c>.
/// </summary>
/// <remarks>
/// One thread at a time writes (the writing members serialize on a lock); any number of
/// threads read at the same time, without waiting for the writer or its fdatasync. A reader
/// answers from one published state of the log and by default sees only entries that are on
/// stable storage, so a crash can never take back an entry it returned; the
/// <c>includeUnsynced</c> reads also see entries written but not yet synced. A segment a
/// compaction removes stays readable to the readers already in it.
/// </remarks>
public sealed class RaftLog : IDisposable, IAsyncDisposable
{
    private readonly object _writeGate = new();
    private readonly WriteAheadLog _wal;
    private readonly IFileSystem _fs;
    private readonly bool _mapSegments;
    private readonly Action _publishWritten;

    // The published state; readers take it without a lock.
    private LogView _view;

    // The writer's side, under _writeGate: the segments of the log in order (the last is the
    // tail), the segment files before them that the open did not need, and the run appended to.
    private readonly List<LogSegment> _segments;
    private readonly List<string> _older;
    private TailRun? _tail;

    // One Append's entries between the write and the fdatasync, for _publishWritten.
    private long[] _offsets = new long[16];
    private ulong[] _terms = new ulong[16];
    private ulong _pendingFirst;
    private int _pendingCount;
    private LogSegment? _pendingSegment;
    private HardState _pendingState;
    private LogView? _written;

    private RaftLog(WriteAheadLog wal, WalOptions options, List<LogSegment> segments, List<string> older, LogView view, byte[] metadata)
    {
        _wal = wal;
        _fs = options.FileSystem;
        _mapSegments = options.MapSegments;
        _segments = segments;
        _older = older;
        _view = view;
        Metadata = metadata;
        _publishWritten = PublishWritten;
    }

    /// <summary>The log's directory.</summary>
    public string Directory => _wal.Directory;

    /// <summary>The metadata stored at the head of every segment.</summary>
    public ReadOnlyMemory<byte> Metadata { get; }

    /// <summary>
    /// The index of the first entry that can be read: one past the snapshot the log was opened
    /// at, or past the index it was compacted to.
    /// </summary>
    /// <exception cref="WalException">Closed.</exception>
    public ulong FirstIndex => Current().FirstIndex;

    /// <summary>The index of the last entry on stable storage (<see cref="FirstIndex"/> - 1 when there is none).</summary>
    /// <exception cref="WalException">Closed.</exception>
    public ulong LastIndex => Current().DurableIndex;

    /// <summary>The index of the last entry written, synced or not: past <see cref="LastIndex"/> only while an Append is between its write and its fdatasync.</summary>
    /// <exception cref="WalException">Closed.</exception>
    public ulong LastWrittenIndex => Current().LastIndex;

    /// <summary>The last hard state appended or read.</summary>
    /// <exception cref="WalException">Closed.</exception>
    public HardState HardState => Current().State;

    /// <summary>The last snapshot saved, or the one the log was opened at.</summary>
    /// <exception cref="WalException">Closed.</exception>
    public Snapshot Snapshot => Current().Snapshot;

    /// <summary>
    /// Creates a new log in <paramref name="dir"/>, as <see cref="WriteAheadLog.Create(string, ReadOnlyMemory{byte}, WalOptions?)"/> does,
    /// ready to append from index 1.
    /// </summary>
    /// <param name="dir">The directory to create.</param>
    /// <param name="metadata">Bytes stored at the head of every segment.</param>
    /// <param name="options">Settings; <see cref="WalOptions.Default"/> when null.</param>
    /// <returns>The new log.</returns>
    /// <exception cref="WalException">As <see cref="WriteAheadLog.Create(string, ReadOnlyMemory{byte}, WalOptions?)"/>.</exception>
    public static RaftLog Create(string dir, ReadOnlyMemory<byte> metadata, WalOptions? options = null)
    {
        options ??= WalOptions.Default;
        var wal = WriteAheadLog.Create(dir, metadata, options);
        try
        {
            var name = wal.TailName;
            var first = OpenSegment(options.FileSystem, options.MapSegments, wal.Directory, name, name.ToString());
            var view = new LogView([], 0, 0, 0, 0, HardState.Empty, Snapshot.Zero, false);
            return new RaftLog(wal, options, [first], [], view, metadata.ToArray());
        }
        catch (Exception ex)
        {
            wal.Dispose();
            throw ex as WalException ?? WalException.Io($"opening {wal.Directory} for reading", ex);
        }
    }

    /// <summary>
    /// Opens the log at <paramref name="snapshot"/> and indexes it: reads it once with
    /// ReadAll's rules, keeping where each entry after the snapshot lies, and leaves it locked
    /// and ready to append after its last valid record. <see cref="FirstIndex"/> is then one past
    /// the snapshot.
    /// </summary>
    /// <param name="dir">The log's directory.</param>
    /// <param name="snapshot">The snapshot to start from; <see cref="Snapshot.Zero"/> for the whole log.</param>
    /// <param name="options">Settings; <see cref="WalOptions.Default"/> when null.</param>
    /// <returns>The log.</returns>
    /// <exception cref="WalException">
    /// As <see cref="WriteAheadLog.Open"/> and then ReadAll in write mode: FileNotFound, Locked,
    /// SnapshotNotFound (no contents; the log is not left open), SnapshotMismatch,
    /// MetadataConflict, CrcMismatch, SliceOutOfRange, CorruptRecord, UnexpectedEof (a torn last
    /// record, which <see cref="WalDirectory.Repair"/> cuts off), Io.
    /// </exception>
    public static RaftLog Open(string dir, Snapshot snapshot, WalOptions? options = null)
    {
        options ??= WalOptions.Default;
        options.Validate();
        dir = SegmentDirectory.FullPath(dir);
        var fs = options.FileSystem;
        var all = SegmentDirectory.ReadSegments(fs, dir);
        var chosen = SegmentDirectory.SelectFrom(all, snapshot.Index, dir);
        var locked = SegmentDirectory.Open(fs, dir, chosen, write: true);
        var segments = new List<LogSegment>(chosen.Count);
        var handover = chosen.Select((s, i) => new OpenSegment(s.Name, locked[i])).ToList();
        try
        {
            foreach (var s in chosen)
                segments.Add(OpenSegment(fs, options.MapSegments, dir, s.Name, s.FileName));
            var reader = new SegmentReader(locked, [.. chosen.Select(s => s.FileName)]);
            var found = IndexScan.Read(reader, segments, snapshot, options.CheckRaftInvariants);
            var wal = WriteAheadLog.Resume(dir, options, handover, reader.Offset, reader.Crc, found.Metadata, found.State, found.LastIndex, found.Invariants);
            ulong last = found.Runs.Length > 0 ? found.Runs[^1].Last : snapshot.Index;
            var view = new LogView(found.Runs, snapshot.Index, snapshot.Term, last, last, found.State, snapshot, false);
            var older = all.Take(all.Count - chosen.Count).Select(s => s.FileName).ToList();
            return new RaftLog(wal, options, segments, older, view, found.Metadata);
        }
        catch (Exception ex)
        {
            foreach (var segment in handover)
                segment.File.Dispose();
            foreach (var segment in segments)
                segment.Release();
            if (ex is WalException)
                throw;
            throw WalException.Io($"reading the WAL in {dir}", ex);
        }
    }

    /// <summary>The term of entry <paramref name="index"/>, from the index without reading the file; the snapshot's (or compaction's) term at <see cref="FirstIndex"/> - 1.</summary>
    /// <param name="index">From <see cref="FirstIndex"/> - 1 to <see cref="LastIndex"/>.</param>
    /// <param name="includeUnsynced">Whether entries written but not yet synced count.</param>
    /// <returns>The term.</returns>
    /// <exception cref="WalException">Compacted, Unavailable or Closed.</exception>
    public ulong Term(ulong index, bool includeUnsynced = false)
    {
        var view = Current();
        if (index == view.CompactedIndex)
            return view.CompactedTerm;
        if (index < view.CompactedIndex)
            throw Compacted(view, index);
        if (index > Bound(view, includeUnsynced))
            throw Unavailable(view, index, includeUnsynced);
        return view.Runs[view.RunOf(index)].TermOf(index);
    }

    /// <summary>Reads entry <paramref name="index"/>.</summary>
    /// <param name="index">From <see cref="FirstIndex"/> to <see cref="LastIndex"/>.</param>
    /// <param name="includeUnsynced">Whether entries written but not yet synced may be read.</param>
    /// <returns>The entry, its data a fresh copy.</returns>
    /// <exception cref="WalException">Compacted, Unavailable, CorruptRecord, Io or Closed.</exception>
    public Entry GetEntry(ulong index, bool includeUnsynced = false)
    {
        while (true)
        {
            var view = Current();
            if (index < view.FirstIndex)
                throw Compacted(view, index);
            if (index > Bound(view, includeUnsynced))
                throw Unavailable(view, index, includeUnsynced);
            var run = view.Runs[view.RunOf(index)];
            if (!run.Segment.TryAcquire())
            {
                Retrying(view);
                continue;
            }
            var reader = new EntryReader();
            try
            {
                long offset = run.OffsetOf(index);
                // Within a run frames lie in index order, so the next entry's offset bounds this
                // frame: one small read instead of a page (most of the cost of a GetEntry).
                long bound = index < run.Last ? run.OffsetOf(index + 1) - offset : EntryReader.FirstReadBytes;
                return reader.Read(run.Segment, offset, index, run.TermOf(index), offset, (int)Math.Min(bound, EntryReader.FirstReadBytes));
            }
            catch (Exception ex) when (ex is not WalException)
            {
                throw WalException.Io($"reading entry {index} from {run.Segment.FileName}", ex);
            }
            finally
            {
                reader.Dispose();
                run.Segment.Release();
            }
        }
    }

    /// <summary>
    /// Reads the entries from <paramref name="lo"/> up to but not including <paramref name="hi"/>,
    /// as raft's Storage.Entries: at most <paramref name="maxBytes"/> of encoded entries
    /// (raftpb.Entry's size), but always the first one, however large.
    /// </summary>
    /// <param name="lo">The first index; at least <see cref="FirstIndex"/>.</param>
    /// <param name="hi">One past the last index; at most <see cref="LastIndex"/> + 1.</param>
    /// <param name="maxBytes">The size limit; <see cref="ulong.MaxValue"/> for none.</param>
    /// <param name="includeUnsynced">Whether entries written but not yet synced may be read.</param>
    /// <returns>The entries, in order, their data fresh copies.</returns>
    /// <exception cref="WalException">InvalidArgument (lo above hi), Compacted, Unavailable, CorruptRecord, Io or Closed.</exception>
    public IReadOnlyList<Entry> GetEntries(ulong lo, ulong hi, ulong maxBytes = ulong.MaxValue, bool includeUnsynced = false)
    {
        if (lo > hi)
            throw WalException.InvalidArgument($"GetEntries({lo}, {hi}): lo is above hi.");
        while (true)
        {
            var view = Current();
            if (lo < view.FirstIndex)
                throw Compacted(view, lo);
            if (hi > Bound(view, includeUnsynced) + 1)
                throw Unavailable(view, hi - 1, includeUnsynced);
            if (lo == hi)
                return [];
            var entries = new List<Entry>((int)Math.Min(hi - lo, 1024));
            if (TryRead(view, lo, hi, maxBytes, entries))
                return entries;
            Retrying(view);
        }
    }

    /// <summary>Reads from one view; false when a segment was let go meanwhile, to try again from a newer view.</summary>
    private static bool TryRead(LogView view, ulong lo, ulong hi, ulong maxBytes, List<Entry> entries)
    {
        ulong size = 0;
        var reader = new EntryReader();
        try
        {
            ulong index = lo;
            for (int r = view.RunOf(lo); index < hi; r++)
            {
                var run = view.Runs[r];
                ulong end = Math.Min(hi, run.Last + 1);
                if (!run.Segment.TryAcquire())
                    return false;
                try
                {
                    long readAheadTo = run.OffsetOf(end - 1);
                    for (; index < end; index++)
                    {
                        var entry = reader.Read(run.Segment, run.OffsetOf(index), index, run.TermOf(index), readAheadTo);
                        size += (ulong)(RecordCodec.EntryHeaderSize(entry) + entry.Data.Length);
                        if (entries.Count > 0 && size > maxBytes)
                            return true;
                        entries.Add(entry);
                    }
                }
                catch (Exception ex) when (ex is not WalException)
                {
                    throw WalException.Io($"reading entry {index} from {run.Segment.FileName}", ex);
                }
                finally
                {
                    run.Segment.Release();
                }
            }
            return true;
        }
        finally
        {
            reader.Dispose();
        }
    }

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

    /// <summary>
    /// The entries from <paramref name="lo"/> on, read in batches of about a megabyte on the
    /// thread pool: up to <paramref name="hi"/> (exclusive), or, with the default, up to the last
    /// index as it is when each batch is read, so a reader catching up follows an appending log
    /// until it has caught up. Only synced entries are read.
    /// </summary>
    /// <param name="lo">The first index; at least <see cref="FirstIndex"/>.</param>
    /// <param name="hi">One past the last index wanted; <see cref="ulong.MaxValue"/> to read to the end.</param>
    /// <param name="cancellationToken">Stops the enumeration between batches.</param>
    /// <returns>The entries, in order.</returns>
    /// <exception cref="WalException">As <see cref="GetEntries"/>, raised while enumerating.</exception>
    public async IAsyncEnumerable<Entry> ReadEntriesAsync(
        ulong lo,
        ulong hi = ulong.MaxValue,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        const ulong batchBytes = 1 << 20;
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            ulong from = lo;
            var batch = await Task.Run(() =>
            {
                ulong end = Math.Min(hi, LastIndex + 1);
                return from < end ? GetEntries(from, end, batchBytes) : [];
            }, cancellationToken).ConfigureAwait(false);
            if (batch.Count == 0)
                yield break;
            foreach (var entry in batch)
                yield return entry;
            lo += (ulong)batch.Count;
        }
    }

    /// <summary>Closes the log as <see cref="Dispose"/> does, with its final fdatasync on the thread pool.</summary>
    /// <returns>A task that completes when the log is closed.</returns>
    public ValueTask DisposeAsync() => new(Task.Run(Dispose));

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
    /// on from its index + 1. An open at it finds the log the same.
    /// </summary>
    /// <param name="snapshot">The snapshot's index, term and membership.</param>
    /// <exception cref="WalException">Closed, Io or Failed.</exception>
    public void SaveSnapshot(Snapshot snapshot)
    {
        lock (_writeGate)
        {
            var view = Current();
            _wal.SaveSnapshot(snapshot);
            if (snapshot.Index <= view.LastIndex)
            {
                Volatile.Write(ref _view, view with { Snapshot = snapshot });
                return;
            }
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

    /// <summary>
    /// Closes the log: syncs, releases the locks, and closes every file once the readers still
    /// reading are done. Reads after this fail with Closed. Safe to call twice.
    /// </summary>
    /// <exception cref="WalException">Io, when the final sync fails; the files are closed all the same.</exception>
    public void Dispose()
    {
        lock (_writeGate)
        {
            if (Volatile.Read(ref _view).Closed)
                return;
            Volatile.Write(ref _view, LogView.ClosedLog);
            try
            {
                _wal.Dispose();
            }
            finally
            {
                foreach (var segment in _segments)
                    segment.Release();
                _segments.Clear();
                _tail = null;
            }
        }
    }

    private LogView Current()
    {
        var view = Volatile.Read(ref _view);
        return view.Closed ? throw new WalException(WalErrorKind.Closed, "The log is closed.") : view;
    }

    /// <summary>
    /// A segment of <paramref name="view"/> was let go before a reader got to it: a compaction
    /// or a close published a newer view first, which the reader asks next. Were the view still
    /// current, retrying would never end, so that is a broken invariant.
    /// </summary>
    private void Retrying(LogView view)
    {
        if (ReferenceEquals(view, Volatile.Read(ref _view)))
            throw WalException.InvalidState("A segment the log still holds entries in was released.");
    }

    private static ulong Bound(LogView view, bool includeUnsynced) => includeUnsynced ? view.LastIndex : view.DurableIndex;

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

    private static LogSegment OpenSegment(IFileSystem fs, bool map, string dir, SegmentName name, string fileName) =>
        new(name, fileName, fs.OpenFile(Path.Combine(dir, fileName), OpenMode.Read), map);

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

    private static WalException Compacted(LogView view, ulong index) =>
        new(WalErrorKind.Compacted, $"Entry {index} is compacted: the log starts at index {view.FirstIndex}.");

    private static WalException Unavailable(LogView view, ulong index, bool includeUnsynced) =>
        new(WalErrorKind.Unavailable, $"Entry {index} is past the last {(includeUnsynced ? "written" : "synced")} index, {Bound(view, includeUnsynced)}.");
}
