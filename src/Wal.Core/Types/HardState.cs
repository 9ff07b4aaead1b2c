namespace Wal;

/// <summary>Raft's persistent state (raftpb.HardState): current term, vote and commit index.</summary>
public readonly record struct HardState
{
    /// <summary>Creates a hard state.</summary>
    /// <param name="term">The current term.</param>
    /// <param name="vote">The node voted for in <paramref name="term"/>, or 0.</param>
    /// <param name="commit">The highest index known to be committed.</param>
    public HardState(ulong term, ulong vote, ulong commit)
    {
        Term = term;
        Vote = vote;
        Commit = commit;
    }

    /// <summary>The current term.</summary>
    public ulong Term { get; init; }

    /// <summary>The node voted for in <see cref="Term"/>, or 0.</summary>
    public ulong Vote { get; init; }

    /// <summary>The highest index known to be committed.</summary>
    public ulong Commit { get; init; }

    /// <summary>The empty hard state (all zero), which a Save does not write.</summary>
    public static HardState Empty => default;

    /// <summary>True when term, vote and commit are all zero (raft.IsEmptyHardState).</summary>
    public bool IsEmpty => Term == 0 && Vote == 0 && Commit == 0;

    /// <summary>Splits the state into its three values (<c>var (term, vote, commit) = state;</c>).</summary>
    /// <param name="term">The current term.</param>
    /// <param name="vote">The vote.</param>
    /// <param name="commit">The commit index.</param>
    public void Deconstruct(out ulong term, out ulong vote, out ulong commit)
    {
        term = Term;
        vote = Vote;
        commit = Commit;
    }

    /// <summary>
    /// etcd's MustSync rule: a Save must reach stable storage when it carries entries, or when
    /// the term or the vote changed. A commit index alone can be recovered from the peers.
    /// </summary>
    /// <param name="previous">The hard state last saved.</param>
    /// <param name="entryCount">How many entries the Save carries.</param>
    /// <returns>True when the Save must be followed by fdatasync.</returns>
    public bool MustSync(HardState previous, int entryCount) =>
        entryCount != 0 || Vote != previous.Vote || Term != previous.Term;

    /// <summary>The three values in one line; <see cref="IsEmpty"/> is left out (it follows from them).</summary>
    /// <returns>The description, such as <c>HardState(term=1, vote=1, commit=1)</c>.</returns>
    public override string ToString() => $"HardState(term={Term}, vote={Vote}, commit={Commit})";
}
