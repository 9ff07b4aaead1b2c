using Wal.Engine;
using Wal.Format;
using Wal.Reading;
using Wal.Storage;

namespace Wal;

/// <summary>
/// A write-ahead log in etcd's format. A log is either appending (after <see cref="Create(string, ReadOnlyMemory{byte}, WalOptions?)"/>,
/// or after <see cref="Open"/> and <see cref="ReadAll"/>) or reading (after
/// <see cref="OpenForRead"/>). All members are thread-safe.
/// </summary>
/// <remarks>
/// Durability follows etcd: <see cref="Create(string, ReadOnlyMemory{byte}, WalOptions?)"/>, <see cref="SaveSnapshot"/>,
/// <see cref="Sync"/> and every <see cref="Save(HardState, ReadOnlySpan{Entry})"/> that carries entries or changes the term or
/// vote return only after fdatasync. After any failed write or fdatasync the log refuses every
/// further write (<see cref="WalErrorKind.Failed"/>): the page cache may have dropped what the
/// call wrote, so the only safe way on is to reopen and read what is really on disk.
/// </remarks>
public sealed partial class WriteAheadLog : IDisposable, IAsyncDisposable
{
    private readonly object _gate = new();
    private readonly IFileSystem _fs;
    private readonly WalOptions _options;

    // From Open or OpenForRead until ReadAll: the segments and the reader over them.
    private PendingRead? _pending;

    // From Create, or a ReadAll in write mode: the tail segment, and the segments before it,
    // held open for their locks until ReleaseLockTo.
    private SegmentWriter? _writer;
    private readonly List<OpenSegment> _locked = [];
    private FilePipeline? _pipeline;

    private bool _readFailed;
    private bool _closed;
    private Exception? _failure;

    // WalOptions.ZeroAheadBytes where the log's file system converts preallocated space, 0
    // elsewhere (IFileSystem.ConvertsPreallocatedSpace); asked once, when a writer first needs it.
    private int? _zeroAheadHere;

    private int ZeroAheadHere => _zeroAheadHere ??= ZeroAheadIn(Directory, _options);

    private static int ZeroAheadIn(string dir, WalOptions options) =>
        options.ZeroAheadBytes > 0 && options.FileSystem.ConvertsPreallocatedSpace(dir) ? options.ZeroAheadBytes : 0;

    // The last index read, until a writer takes it over.
    private ulong _lastIndex;
    // Raft's invariants over everything written or read, for refusing a Save that breaks one.
    private RaftInvariants _invariants = new();

    private WriteAheadLog(string dir, WalOptions options)
    {
        Directory = dir;
        _options = options;
        _fs = options.FileSystem;
    }

    /// <summary>The log's directory.</summary>
    public string Directory { get; }

    /// <summary>The index of the last entry saved or read (or of a later snapshot saved), from which a cut names the next segment.</summary>
    public ulong LastIndex
    {
        get
        {
            lock (_gate)
                return _writer?.LastIndex ?? _lastIndex;
        }
    }

    /// <summary>
    /// Creates a new log in <paramref name="dir"/> holding <paramref name="metadata"/>. The log is
    /// built in "<paramref name="dir"/>.tmp", made durable, and renamed into place, so a crash
    /// leaves either no log or a complete one. An existing empty directory is replaced; an
    /// existing non-empty one is <see cref="WalErrorKind.AlreadyExists"/>.
    /// </summary>
    /// <param name="dir">The directory to create.</param>
    /// <param name="metadata">Bytes stored at the head of every segment (etcd keeps the node and cluster ids here).</param>
    /// <param name="options">Settings; <see cref="WalOptions.Default"/> when null.</param>
    /// <returns>The new log, ready to append.</returns>
    /// <exception cref="WalException">With kind AlreadyExists, InvalidArgument, RecordTooLarge, Locked or Io.</exception>
    public static WriteAheadLog Create(string dir, ReadOnlyMemory<byte> metadata, WalOptions? options = null)
    {
        options ??= WalOptions.Default;
        options.Validate();
        dir = SegmentDirectory.FullPath(dir);
        if (RecordCodec.RecordSize(uint.MaxValue, metadata.Length) > options.MaxRecordBytes)
            throw new WalException(WalErrorKind.RecordTooLarge,
                $"Metadata of {metadata.Length} bytes exceeds the record limit of {options.MaxRecordBytes} bytes.");
        var fs = options.FileSystem;
        // A link to a directory (or to where one is to be) means the directory it leads to:
        // rename(2) would not replace the link with the new log, and DIR.tmp would be left behind.
        dir = fs.ResolveLinks(dir);
        if (fs.FileExists(dir))
            throw new WalException(WalErrorKind.AlreadyExists, $"{dir} exists and is a file.");
        if (fs.DirectoryExists(dir) && fs.ListDirectory(dir).Count > 0)
            throw new WalException(WalErrorKind.AlreadyExists, $"{dir} exists and is not empty.");

        string tmp = dir + Layout.TempExtension;
        IStorageFile? file = null;
        // Stryker disable once Boolean : before DIR.tmp is made, removing it again fails or finds nothing, quietly
        bool madeTmp = false;
        try
        {
            if (fs.DirectoryExists(tmp))
                fs.RemoveDirectoryRecursive(tmp);
            fs.CreateDirectory(tmp);
            madeTmp = true;
            file = fs.OpenFile(Path.Combine(tmp, new SegmentName(0, 0).ToString()), OpenMode.CreateTruncate);
            // Stryker disable once Statement : a fresh inode: the lock is taken for the writer's life and cannot be refused (DIR.tmp was removed first)
            if (!file.TryLock())
                throw new WalException(WalErrorKind.Locked, $"{tmp} is being created by another process.");
            file.Preallocate(options.SegmentSizeBytes);
            if (options.ZeroFillSegments)
                ZeroFill.Range(file, 0, options.SegmentSizeBytes);

            int zeroAhead = ZeroAheadIn(tmp, options);
            var writer = SegmentWriter.First(file, metadata.ToArray(), SegmentWriter.SpaceAhead.Fresh(options, zeroAhead));
            writer.WriteFirstHeader();
            writer.Sync();
            // etcd does not sync the temporary directory; without it the segment's directory
            // entry may not survive the rename's crash window, so the log would vanish.
            fs.SyncDirectory(tmp);
            fs.Rename(tmp, dir);
            // Stryker disable once Boolean : after the rename DIR.tmp is gone; removing it finds nothing, quietly
            madeTmp = false;
            fs.SyncDirectory(ParentOf(dir));

            var wal = new WriteAheadLog(dir, options) { _writer = writer, _zeroAheadHere = zeroAhead };
            wal._pipeline = new FilePipeline(options.FileSystem, dir, options.SegmentSizeBytes, options.PrepareSegmentsInBackground, options.ZeroFillSegments);
            return wal;
        }
        catch (Exception ex)
        {
            file?.Dispose();
            // A failed Create leaves no DIR.tmp behind, unless another creator holds it.
            // Stryker disable once Logical : Locked is never raised here (above), so the condition is madeTmp alone; without it the removal is quiet
            if (madeTmp && ex is not WalException { Kind: WalErrorKind.Locked })
                RemoveQuietly(fs, tmp);
            // Stryker disable once Statement : nothing above raises a WalException today (the metadata is checked before, the lock cannot be refused); a future one keeps its kind
            if (ex is WalException)
                throw;
            throw WalException.Io($"creating the WAL in {dir}", ex);
        }
    }

    /// <inheritdoc cref="Create(string, ReadOnlyMemory{byte}, WalOptions?)"/>
    /// <param name="dir">The directory to create.</param>
    /// <param name="metadata">Bytes stored at the head of every segment; null is empty.</param>
    /// <param name="options">Settings; <see cref="WalOptions.Default"/> when null.</param>
    public static WriteAheadLog Create(string dir, byte[]? metadata, WalOptions? options = null) =>
        Create(dir, new ReadOnlyMemory<byte>(metadata), options);

    /// <inheritdoc cref="Create(string, ReadOnlyMemory{byte}, WalOptions?)"/>
    /// <param name="dir">The directory to create.</param>
    /// <param name="metadata">Text stored, as UTF-8, at the head of every segment; null is empty.</param>
    /// <param name="options">Settings; <see cref="WalOptions.Default"/> when null.</param>
    public static WriteAheadLog Create(string dir, string? metadata, WalOptions? options = null) =>
        Create(dir, System.Text.Encoding.UTF8.GetBytes(metadata ?? ""), options);

    /// <summary>
    /// Opens the log for appending at <paramref name="snapshot"/>, locking its segments. Call
    /// <see cref="ReadAll"/> before saving: it reads the log and positions the writer after the
    /// last valid record.
    /// </summary>
    /// <param name="dir">The log's directory.</param>
    /// <param name="snapshot">The snapshot to replay from; <see cref="Snapshot.Zero"/> for the whole log.</param>
    /// <param name="options">Settings; <see cref="WalOptions.Default"/> when null.</param>
    /// <returns>The log, in read mode until <see cref="ReadAll"/>.</returns>
    /// <exception cref="WalException">With kind FileNotFound, Locked or Io.</exception>
    public static WriteAheadLog Open(string dir, Snapshot snapshot, WalOptions? options = null) =>
        OpenAt(dir, snapshot, options, write: true);

    /// <summary>
    /// Opens the log read-only at <paramref name="snapshot"/>, without a lock, so it can be read
    /// while a writer has it open. Its <see cref="ReadAll"/> tolerates a torn last record.
    /// </summary>
    /// <param name="dir">The log's directory.</param>
    /// <param name="snapshot">The snapshot to replay from.</param>
    /// <param name="options">Settings; <see cref="WalOptions.Default"/> when null.</param>
    /// <returns>The log, ready for one <see cref="ReadAll"/>.</returns>
    /// <exception cref="WalException">With kind FileNotFound or Io.</exception>
    public static WriteAheadLog OpenForRead(string dir, Snapshot snapshot, WalOptions? options = null) =>
        OpenAt(dir, snapshot, options, write: false);

    private static WriteAheadLog OpenAt(string dir, Snapshot snapshot, WalOptions? options, bool write)
    {
        options ??= WalOptions.Default;
        options.Validate();
        dir = SegmentDirectory.FullPath(dir);
        var fs = options.FileSystem;
        var chosen = SegmentDirectory.SelectFrom(SegmentDirectory.ReadSegments(fs, dir), snapshot.Index, dir);
        var files = SegmentDirectory.Open(fs, dir, chosen, write);
        var segments = chosen.Select((s, i) => new OpenSegment(s.Name, files[i])).ToList();
        var wal = new WriteAheadLog(dir, options)
        {
            _pending = new PendingRead(snapshot, segments, [.. chosen.Select(s => s.FileName)], write, options.MapSegments),
        };
        // The pipeline's constructor does not throw: a failure to prepare the file is kept for
        // the first cut to report, when the file is needed.
        if (write)
            wal._pipeline = new FilePipeline(options.FileSystem, dir, options.SegmentSizeBytes, options.PrepareSegmentsInBackground, options.ZeroFillSegments);
        return wal;
    }

    /// <summary>
    /// A log ready to append after a reader other than <see cref="ReadAll"/> read
    /// <paramref name="segments"/> (opened for writing, locked) to their end, as ReadAll's write
    /// mode leaves it: the tail is zeroed past <paramref name="offset"/> and appended to, and the
    /// segments before it are held for their locks.
    /// </summary>
    internal static WriteAheadLog Resume(string dir, WalOptions options, List<OpenSegment> segments, long offset, uint crc, byte[] metadata, HardState state, ulong lastIndex, RaftInvariants invariants)
    {
        var wal = new WriteAheadLog(dir, options) { _invariants = invariants };
        try
        {
            wal._writer = SegmentWriter.Resume(segments[^1], offset, crc, metadata, state, lastIndex, options.ZeroFillSegments, wal.ZeroAheadHere);
            wal._locked.AddRange(segments.Take(segments.Count - 1));
            // Stryker disable once Statement : the log owns the files from here; the one caller returns without reading its list again
            segments.Clear();
            wal._lastIndex = lastIndex;
            wal._pipeline = new FilePipeline(options.FileSystem, dir, options.SegmentSizeBytes, options.PrepareSegmentsInBackground, options.ZeroFillSegments);
            return wal;
        }
        catch (Exception ex)
        {
            // What the log did not take is still the caller's list: closed here, and the list
            // emptied so that the caller does not close the files again.
            foreach (var segment in segments)
                segment.File.Dispose();
            segments.Clear();
            wal.CloseFiles();
            // Stryker disable once NullCoalescing : only the file system's IOException can reach here (storage never throws WalException); the guard keeps a future WalException's kind
            throw ex as WalException ?? WalException.Io($"preparing {dir} for appending", ex);
        }
    }

    private static string ParentOf(string dir) => Path.GetDirectoryName(dir) ?? "/";

    private static void RemoveQuietly(IFileSystem fs, string dir)
    {
        try
        {
            fs.RemoveDirectoryRecursive(dir);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // The error that made Create fail is the one to report.
        }
    }
}
