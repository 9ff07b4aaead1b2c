namespace Wal;

/// <summary>Raft's persistent state (raftpb.HardState): current term, vote and commit index.</summary>
/// <param name="Term">The current term.</param>
/// <param name="Vote">The node voted for in <paramref name="Term"/>, or 0.</param>
/// <param name="Commit">The highest index known to be committed.</param>
public readonly record struct HardState(ulong Term, ulong Vote, ulong Commit)
{
    /// <summary>The empty hard state (all zero), which a Save does not write.</summary>
    public static HardState Empty => default;

    /// <summary>True when term, vote and commit are all zero (raft.IsEmptyHardState).</summary>
    public bool IsEmpty => Term == 0 && Vote == 0 && Commit == 0;

    /// <summary>
    /// etcd's MustSync rule: a Save must reach stable storage when it carries entries, or when
    /// the term or the vote changed. A commit index alone can be recovered from the peers.
    /// </summary>
    /// <param name="previous">The hard state last saved.</param>
    /// <param name="entryCount">How many entries the Save carries.</param>
    /// <returns>True when the Save must be followed by fdatasync.</returns>
    public bool MustSync(HardState previous, int entryCount) =>
        entryCount != 0 || Vote != previous.Vote || Term != previous.Term;
}
