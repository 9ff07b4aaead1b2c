namespace Wal.Snap;

/// <summary>Why a snapshot search passed over a file.</summary>
public enum SkipReason
{
    /// <summary>The file is not a snapshot etcd would read (empty, a CRC mismatch, not the messages); etcd renames it *.broken.</summary>
    Broken,

    /// <summary>The file could not be read (permissions, an I/O error, not a regular file); it is left as it is.</summary>
    Unreadable,

    /// <summary>The snapshot is valid, but the WAL holds no valid snapshot record for it, so a node cannot start from it.</summary>
    NotInWal,
}
