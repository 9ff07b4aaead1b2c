namespace Wal.Snap;

/// <summary>What a search for a snapshot to start from found.</summary>
/// <param name="Snapshot">The newest snapshot that qualified; null when none did (etcd's ErrNoSnapshot).</param>
/// <param name="Skipped">The newer files passed over on the way, newest first.</param>
public sealed record SnapshotSearch(RaftSnapshot? Snapshot, IReadOnlyList<SkippedSnapshot> Skipped)
{
    /// <summary>Whether a snapshot was found.</summary>
    public bool Found => Snapshot is not null;

    /// <summary>The WAL snapshot to open the log at: the found snapshot's, or <see cref="Wal.Snapshot.Zero"/> (a full replay).</summary>
    public Snapshot WalSnapshot => Snapshot?.WalSnapshot ?? Wal.Snapshot.Zero;

    /// <summary>The snapshot found and how many files were skipped.</summary>
    /// <returns>The description.</returns>
    public override string ToString() =>
        $"SnapshotSearch({(Snapshot is null ? "none" : Snapshot.FileName)}, {Skipped.Count} skipped)";
}
