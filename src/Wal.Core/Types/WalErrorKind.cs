namespace Wal;

/// <summary>What went wrong, so that callers can match on it rather than on messages.</summary>
public enum WalErrorKind
{
    /// <summary>Two metadata records in the log differ (etcd's ErrMetadataConflict).</summary>
    MetadataConflict,

    /// <summary>The directory holds no usable segment for the snapshot, or sequence numbers have a gap (ErrFileNotFound).</summary>
    FileNotFound,

    /// <summary>A record's CRC does not match the chain (ErrCRCMismatch): the log is corrupt.</summary>
    CrcMismatch,

    /// <summary>A snapshot record has the wanted index but another term (ErrSnapshotMismatch).</summary>
    SnapshotMismatch,

    /// <summary>No snapshot record matches the snapshot the log was opened at (ErrSnapshotNotFound); the contents are still returned.</summary>
    SnapshotNotFound,

    /// <summary>An entry's index leaves a gap after the entries read so far (ErrSliceOutOfRange).</summary>
    SliceOutOfRange,

    /// <summary>The last record is torn or truncated (io.ErrUnexpectedEOF); Repair can cut it off.</summary>
    UnexpectedEof,

    /// <summary>
    /// A record to write is larger than <see cref="WalOptions.MaxRecordBytes"/>, or a length word
    /// read claims a record of 10 MiB or more (etcd's ErrMaxWALEntrySizeLimitExceeded): corruption.
    /// </summary>
    RecordTooLarge,

    /// <summary>Create found an existing, non-empty directory.</summary>
    AlreadyExists,

    /// <summary>Another writer holds the log's lock.</summary>
    Locked,

    /// <summary>The log was closed.</summary>
    Closed,

    /// <summary>A record or its payload cannot be decoded, or has an unknown type.</summary>
    CorruptRecord,

    /// <summary>An argument was invalid; nothing was written.</summary>
    InvalidArgument,

    /// <summary>The call does not fit the log's mode (appending before ReadAll, writing to a read-only log, reading twice).</summary>
    InvalidState,

    /// <summary>The storage reported an error (for example EIO or ENOSPC); the inner exception has the details.</summary>
    Io,

    /// <summary>An earlier write or fdatasync failed, so the log refuses every further write (it fails closed).</summary>
    Failed,

    /// <summary>
    /// A path named like one of the log's files is not a regular file: a symbolic link, a FIFO, a
    /// device, a socket or a directory. The log neither follows nor opens it.
    /// </summary>
    NotRegularFile,

    /// <summary>
    /// A <see cref="RaftLog"/> was asked for an entry or term below its first index: compacted
    /// away, or before the snapshot it was opened at (raft's ErrCompacted).
    /// </summary>
    Compacted,

    /// <summary>A <see cref="RaftLog"/> was asked for an entry or term past its last index (raft's ErrUnavailable).</summary>
    Unavailable,
}
