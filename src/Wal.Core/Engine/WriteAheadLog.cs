using Wal.Engine;
using Wal.Format;
using Wal.Storage;

namespace Wal;

/// <summary>
/// A write-ahead log in etcd's format. A log is either appending (after <see cref="Create"/>,
/// or after <see cref="Open"/> and <see cref="ReadAll"/>) or reading (after
/// <see cref="OpenForRead"/>). All members are thread-safe.
/// </summary>
/// <remarks>
/// Durability follows etcd: <see cref="Create"/>, <see cref="SaveSnapshot"/>,
/// <see cref="Sync"/> and every <see cref="Save(HardState, ReadOnlySpan{Entry})"/> that carries entries or changes the term or
/// vote return only after fdatasync. After any failed write or fdatasync the log refuses every
/// further write (<see cref="WalErrorKind.Failed"/>): the page cache may have dropped what the
/// call wrote, so the only safe way on is to reopen and read what is really on disk.
/// </remarks>
public sealed partial class WriteAheadLog : IDisposable
{
    private enum Mode
    {
        Reading,
        Appending,
        ReadOnlyDone,
        Broken,
        Closed,
    }

    private readonly object _gate = new();
    private readonly IFileSystem _fs;
    private readonly WalOptions _options;
    private readonly List<OpenSegment> _segments;
    private Mode _mode;
    private Exception? _failure;

    // Reading state.
    private Snapshot _start;
    private Decoder? _decoder;

    // Appending state.
    private FilePipeline? _pipeline;
    private Encoder? _encoder;
    private byte[] _metadata = [];
    private HardState _state;
    private ulong _lastIndex;

    private sealed class OpenSegment(SegmentName name, IStorageFile file)
    {
        public SegmentName Name { get; set; } = name;
        public IStorageFile File { get; } = file;
    }

    private WriteAheadLog(string dir, WalOptions options, List<OpenSegment> segments, Mode mode)
    {
        Directory = dir;
        _options = options;
        _fs = options.FileSystem;
        _segments = segments;
        _mode = mode;
    }

    /// <summary>The log's directory.</summary>
    public string Directory { get; }

    /// <summary>The index of the last entry saved or read (or of a later snapshot saved), from which a cut names the next segment.</summary>
    public ulong LastIndex
    {
        get
        {
            lock (_gate)
                return _lastIndex;
        }
    }

    private OpenSegment Tail => _segments[^1];

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
        dir = FullPath(dir);
        if (RecordCodec.RecordSize(uint.MaxValue, metadata.Length) > options.MaxRecordBytes)
            throw new WalException(WalErrorKind.RecordTooLarge,
                $"Metadata of {metadata.Length} bytes exceeds the record limit of {options.MaxRecordBytes} bytes.");
        var fs = options.FileSystem;
        if (fs.FileExists(dir))
            throw new WalException(WalErrorKind.AlreadyExists, $"{dir} exists and is a file.");
        if (fs.DirectoryExists(dir) && fs.ListDirectory(dir).Count > 0)
            throw new WalException(WalErrorKind.AlreadyExists, $"{dir} exists and is not empty.");

        string tmp = dir + Layout.TempExtension;
        IStorageFile? file = null;
        try
        {
            if (fs.DirectoryExists(tmp))
                fs.RemoveDirectoryRecursive(tmp);
            fs.CreateDirectory(tmp);
            var name = new SegmentName(0, 0);
            file = fs.OpenFile(Path.Combine(tmp, name.ToString()), OpenMode.CreateTruncate);
            if (!file.TryLock())
                throw new WalException(WalErrorKind.Locked, $"{tmp} is being created by another process.");
            file.Preallocate(options.SegmentSizeBytes);

            var encoder = new Encoder(new PageWriter(file, 0), 0);
            encoder.EncodeCrc();
            encoder.Encode(RecordType.Metadata, metadata.Span, default);
            encoder.Encode(RecordType.Snapshot, RecordCodec.EncodeSnapshot(Snapshot.Zero), default);
            encoder.Writer.Flush();
            file.DataSync();
            // etcd does not sync the temporary directory; without it the segment's directory
            // entry may not survive the rename's crash window, so the log would vanish.
            fs.SyncDirectory(tmp);
            fs.Rename(tmp, dir);
            fs.SyncDirectory(ParentOf(dir));

            var wal = new WriteAheadLog(dir, options, [new OpenSegment(name, file)], Mode.Appending)
            {
                _encoder = encoder,
                _metadata = metadata.ToArray(),
            };
            wal._pipeline = new FilePipeline(fs, dir, options.SegmentSizeBytes, options.PrepareSegmentsInBackground);
            return wal;
        }
        catch (Exception ex)
        {
            file?.Dispose();
            if (ex is WalException)
                throw;
            throw WalException.Io($"creating the WAL in {dir}", ex);
        }
    }

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
        dir = FullPath(dir);
        var fs = options.FileSystem;
        var chosen = SegmentDirectory.SelectFrom(SegmentDirectory.ReadSegments(fs, dir), snapshot.Index, dir);
        var files = SegmentDirectory.Open(fs, dir, chosen, write);
        var segments = chosen.Select((s, i) => new OpenSegment(s.Name, files[i])).ToList();
        var wal = new WriteAheadLog(dir, options, segments, Mode.Reading)
        {
            _start = snapshot,
            _decoder = new Decoder(files, [.. chosen.Select(s => s.FileName)]),
        };
        if (write)
        {
            try
            {
                wal._pipeline = new FilePipeline(fs, dir, options.SegmentSizeBytes, options.PrepareSegmentsInBackground);
            }
            catch (Exception ex)
            {
                wal.CloseFiles();
                throw ex as WalException ?? WalException.Io($"preparing the next segment of {dir}", ex);
            }
        }
        return wal;
    }

    /// <summary>Whether <paramref name="dir"/> holds a log (any *.wal file), as etcd's wal.Exist.</summary>
    /// <param name="dir">The directory.</param>
    /// <param name="options">Settings, for the file system; the real one when null.</param>
    /// <returns>True when the directory exists and holds a segment file.</returns>
    public static bool Exists(string dir, WalOptions? options = null)
    {
        var fs = (options ?? WalOptions.Default).FileSystem;
        try
        {
            dir = FullPath(dir);
            return fs.DirectoryExists(dir) && fs.ListDirectory(dir).Any(n => n.EndsWith(Layout.SegmentExtension, StringComparison.Ordinal));
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or WalException)
        {
            return false;
        }
    }

    internal static string FullPath(string dir)
    {
        if (string.IsNullOrWhiteSpace(dir))
            throw WalException.InvalidArgument("The WAL directory must be a non-empty path.");
        if (dir.Contains('\0'))
            throw WalException.InvalidArgument("The WAL directory must not contain a NUL character.");
        return Path.TrimEndingDirectorySeparator(Path.GetFullPath(dir)) is { Length: > 0 } full && full != "/"
            ? full
            : throw WalException.InvalidArgument("The WAL directory must not be the root directory.");
    }

    private static string ParentOf(string dir) => Path.GetDirectoryName(dir) ?? "/";
}
