using Wal.Storage;

namespace Wal;

/// <summary>Settings of a write-ahead log. The defaults are etcd's.</summary>
public sealed record WalOptions
{
    /// <summary>etcd's wal.SegmentSizeBytes: 64,000,000 bytes.</summary>
    public const long DefaultSegmentSizeBytes = 64 * 1000 * 1000;

    /// <summary>
    /// etcd 3.4's decoder refuses a record of 10 MiB or more, so larger records would make the
    /// log unreadable to it.
    /// </summary>
    public const int DefaultMaxRecordBytes = 10 * 1024 * 1024 - 8;

    /// <summary>The default settings.</summary>
    public static WalOptions Default { get; } = new();

    /// <summary>
    /// A segment is cut once its tail passes this many bytes; new segments are preallocated
    /// to this size. etcd's default is 64,000,000 bytes.
    /// </summary>
    public long SegmentSizeBytes { get; init; } = DefaultSegmentSizeBytes;

    /// <summary>The largest record (frame payload) a Save may write; larger ones fail with <see cref="WalErrorKind.RecordTooLarge"/>.</summary>
    public int MaxRecordBytes { get; init; } = DefaultMaxRecordBytes;

    /// <summary>The file system the log lives on; the real Linux one unless a test puts a simulated one here.</summary>
    public IFileSystem FileSystem { get; init; } = LinuxFileSystem.Instance;

    /// <summary>
    /// Whether the next segment file is created and preallocated on a background thread, as
    /// etcd's file pipeline does. Simulated file systems turn this off so runs are deterministic.
    /// </summary>
    public bool PrepareSegmentsInBackground { get; init; } = true;

    /// <summary>
    /// Whether a segment's preallocated space is also written with zeros (and synced) before
    /// the log appends to it: the first segment at Create, each segment the pipeline prepares,
    /// and the rest of the tail when a log is opened to write. The files' bytes are the same
    /// (fallocate's space reads as zeros too), so etcd and every reader see no difference.
    /// What changes is the file system's work per fdatasync: fallocate leaves unwritten extents,
    /// and every fdatasync that writes into one must also commit their conversion through the
    /// journal; written zeros leave nothing to commit but the data. PostgreSQL's
    /// <c>wal_init_zero</c> is the same trade. Measured on ext4 (bench/README.md, "Late night"):
    /// Saves of about 13 KB each went 1.5-1.8x faster, single small entries did not change, and
    /// Saves of 400 KB each went 2.4x slower, since every segment is written twice and the zeros
    /// take the device's bandwidth from the log. Off by default: <see cref="ZeroAheadBytes"/>
    /// gives small Saves the same without costing large ones.
    /// </summary>
    public bool ZeroFillSegments { get; init; }

    /// <summary>
    /// How many bytes of a segment's space an fdatasync writes with zeros ahead of the log, when
    /// it has to commit new space anyway (default 1 MiB; 0 turns it off). fallocate leaves
    /// unwritten extents, and an fdatasync that writes into one commits the conversion through
    /// the file system's journal: with Saves of a few KB, nearly every fdatasync does, which
    /// about doubles its CPU cost on ext4. So the Save whose bytes first reach past the written
    /// space also writes zeros over the next ZeroAheadBytes, in the same write-back and the
    /// same commit, and the Saves that follow find written space and commit only their data.
    /// It is left out when a Save (or the one before it) wrote more than a sixteenth of
    /// ZeroAheadBytes, since such Saves convert so much space each that writing it twice costs
    /// more than the commits it saves. The files' bytes are the same either way: the zeros go
    /// only over preallocated space, which reads as zeros, and never past the file's length.
    /// Measured in bench/README.md ("Zero-ahead"). Only where the file system says preallocated
    /// space needs converting (<see cref="Storage.IFileSystem.ConvertsPreallocatedSpace"/>: ext4
    /// and XFS; not btrfs, ZFS, tmpfs or file systems it does not know) are zeros written.
    /// </summary>
    public int ZeroAheadBytes { get; init; } = DefaultZeroAheadBytes;

    /// <summary>The default <see cref="ZeroAheadBytes"/>: 1 MiB.</summary>
    public const int DefaultZeroAheadBytes = 1 << 20;

    /// <summary>
    /// Whether raft's invariants are kept as a second checksum (the default): a record read that
    /// breaks one is <see cref="WalErrorKind.CorruptRecord"/>, and a Save that would break one,
    /// or leave a gap in the indexes, is <see cref="WalErrorKind.InvalidArgument"/> before
    /// anything is written. etcd's format leaves each record's type byte outside its CRC, and
    /// etcd checks none of this; false reads and writes as etcd 3.4 does. docs/format.md lists
    /// the invariants.
    /// </summary>
    public bool CheckRaftInvariants { get; init; } = true;

    /// <summary>
    /// Whether a <see cref="RaftLog"/> maps its segment files into memory (read-only, shared) and
    /// reads entries from the mapping, without a system call per read (the default), rather than
    /// with a positioned read each. Only files that can be mapped are (the real Linux file system's;
    /// a simulated one is read as before), and only bytes below the end of what the log indexed
    /// are touched, which its own cuts and truncations never go below. The one pass that opens a
    /// log reads mapped segments in place too, without copying them: RaftLog.Open and
    /// <see cref="WriteAheadLog.ReadAll"/> after <see cref="WriteAheadLog.Open"/> all of the
    /// segments they hold locked; ReadAll after <see cref="WriteAheadLog.OpenForRead"/> every
    /// segment but the last, which another process's writer may still cut (every earlier one was
    /// truncated by its cut, and no writer shrinks it again). On by default because the
    /// log's segments are locked for its sole use and GetEntry is several times faster. What
    /// mapping cannot survive, and a positioned read turns into an <see cref="WalErrorKind.Io"/>
    /// or <see cref="WalErrorKind.CorruptRecord"/> error, is the reason SQLite leaves mmap off:
    /// another process shrinking a segment file under a running log, or a disk that fails to
    /// read a page not in the page cache, raises SIGBUS and ends the process. Turn this off where
    /// either is a risk worth a slower read (other programs writing into the log's directory, a
    /// network file system).
    /// </summary>
    public bool MapSegments { get; init; } = true;

    /// <summary>
    /// How many bytes a log's sealed segments (all but the preallocated tail) must hold before
    /// <see cref="RaftLog.Open"/> reads it in two halves split at a segment boundary, each record
    /// framed and checked once, on two cores when there are two and the files are the operating
    /// system's. Below it one reader reads it all: a second thread costs more than it saves on a
    /// log that reads in a few milliseconds. A file system plugged in through
    /// <see cref="IFileSystem"/> is read by one thread at a time, so there the halves are read one
    /// after the other: that costs about what one reader costs, and lets a simulated disk put the
    /// split read under test. Default 16 MiB; 0 splits every log of two segments or more, and
    /// <see cref="long.MaxValue"/> none. docs/api.md says what the split read does.
    /// </summary>
    public long SplitOpenBytes { get; init; } = DefaultSplitOpenBytes;

    /// <summary>The default <see cref="SplitOpenBytes"/>: 16 MiB.</summary>
    public const long DefaultSplitOpenBytes = 16L << 20;

    internal void Validate()
    {
        // A segment must hold at least the records a cut writes first (crc, metadata, state).
        if (SegmentSizeBytes < 64)
            throw WalException.InvalidArgument($"SegmentSizeBytes must be at least 64, not {SegmentSizeBytes}.");
        if (MaxRecordBytes < 64 || MaxRecordBytes > DefaultMaxRecordBytes)
            throw WalException.InvalidArgument(
                $"MaxRecordBytes must be from 64 to {DefaultMaxRecordBytes} (the most etcd reads), not {MaxRecordBytes}.");
        if (ZeroAheadBytes < 0)
            throw WalException.InvalidArgument($"ZeroAheadBytes must be 0 or more, not {ZeroAheadBytes}.");
        if (SplitOpenBytes < 0)
            throw WalException.InvalidArgument($"SplitOpenBytes must be 0 or more, not {SplitOpenBytes}.");
        if (FileSystem is null)
            throw WalException.InvalidArgument("FileSystem must not be null.");
    }
}
