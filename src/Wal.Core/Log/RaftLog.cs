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
/// index of where each entry lies (8 bytes an entry, and 16 a change of term), reading entry data from the files on
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
public sealed partial class RaftLog : IDisposable, IAsyncDisposable
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
            // The segments are locked for this log alone, so the scan may read them mapped, in place.
            var (found, offset, crc) = IndexScan.ReadLog(locked, [.. chosen.Select(s => s.FileName)], options.MapSegments ? locked.Count : 0,
                segments, snapshot, options.CheckRaftInvariants, options.SplitOpenBytes);
            var wal = WriteAheadLog.Resume(dir, options, handover, offset, crc, found.Metadata, found.State, found.LastIndex, found.Invariants);
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

    /// <summary>Closes the log as <see cref="Dispose"/> does, with its final fdatasync on the thread pool.</summary>
    /// <returns>A task that completes when the log is closed.</returns>
    public ValueTask DisposeAsync() => new(Task.Run(Dispose));

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

    private static LogSegment OpenSegment(IFileSystem fs, bool map, string dir, SegmentName name, string fileName) =>
        new(name, fileName, fs.OpenFile(Path.Combine(dir, fileName), OpenMode.Read), map);
}
