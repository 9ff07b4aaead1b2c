using Wal.Recovery;

namespace Wal;

public sealed partial class WriteAheadLog
{
    /// <summary>
    /// Repairs a log whose last segment ends in a torn record (what <see cref="ReadAll"/>
    /// reports as <see cref="WalErrorKind.UnexpectedEof"/> after a crash): keeps a copy as
    /// "*.wal.broken", truncates the segment after its last valid record, and fsyncs it.
    /// </summary>
    /// <param name="dir">The log's directory; no writer may have it open.</param>
    /// <param name="options">Settings; <see cref="WalOptions.Default"/> when null.</param>
    /// <returns>Whether anything was cut off.</returns>
    /// <exception cref="WalException">CrcMismatch or CorruptRecord when the damage is not a torn write; FileNotFound, Locked or Io.</exception>
    public static RepairOutcome Repair(string dir, WalOptions? options = null)
    {
        options ??= WalOptions.Default;
        options.Validate();
        return Repairer.Repair(FullPath(dir), options);
    }

    /// <summary>
    /// Reads the log from <paramref name="snapshot"/> without changing it and checks the CRC
    /// chain, the metadata and the snapshot record (etcd's Verify). A torn last record is allowed.
    /// </summary>
    /// <param name="dir">The log's directory.</param>
    /// <param name="snapshot">The snapshot the log must hold.</param>
    /// <param name="options">Settings; <see cref="WalOptions.Default"/> when null.</param>
    /// <returns>The last hard state in the log.</returns>
    /// <exception cref="WalException">SnapshotNotFound, SnapshotMismatch, MetadataConflict, CrcMismatch, CorruptRecord, FileNotFound or Io.</exception>
    public static HardState Verify(string dir, Snapshot snapshot, WalOptions? options = null)
    {
        options ??= WalOptions.Default;
        options.Validate();
        return Wrap(dir, () => Verifier.Verify(FullPath(dir), snapshot, options));
    }

    /// <summary>
    /// The snapshot records in the whole log that a node may start from: those at or below the
    /// last hard state's commit index (etcd's ValidSnapshotEntries).
    /// </summary>
    /// <param name="dir">The log's directory.</param>
    /// <param name="options">Settings; <see cref="WalOptions.Default"/> when null.</param>
    /// <returns>The snapshots, in log order.</returns>
    /// <exception cref="WalException">CrcMismatch, CorruptRecord, FileNotFound or Io.</exception>
    public static IReadOnlyList<Snapshot> ValidSnapshotEntries(string dir, WalOptions? options = null)
    {
        options ??= WalOptions.Default;
        options.Validate();
        return Wrap(dir, () => Verifier.ValidSnapshotEntries(FullPath(dir), options));
    }

    /// <summary>
    /// Every record of the log from its first segment, in order, with each CRC checked against
    /// the chain: what a tool needs to show a WAL record by record. Nothing is changed and no
    /// lock is taken. ReadAll's rules (snapshots, overwrites, metadata) are not applied.
    /// </summary>
    /// <param name="dir">The log's directory.</param>
    /// <param name="options">Settings; <see cref="WalOptions.Default"/> when null.</param>
    /// <returns>The records, read lazily; each record's data is a copy.</returns>
    /// <exception cref="WalException">
    /// Raised while enumerating, after the records before the damage: UnexpectedEof (a torn last
    /// record), CrcMismatch, CorruptRecord, RecordTooLarge; FileNotFound or Io.
    /// </exception>
    public static IEnumerable<WalRecord> Scan(string dir, WalOptions? options = null)
    {
        options ??= WalOptions.Default;
        options.Validate();
        return Scanner.Scan(FullPath(dir), options);
    }

    private static T Wrap<T>(string dir, Func<T> read)
    {
        try
        {
            return read();
        }
        catch (Exception ex) when (ex is not WalException)
        {
            throw WalException.Io($"reading {dir}", ex);
        }
    }
}
