namespace Wal;

/// <summary>
/// A snapshot marker as the WAL stores it (walpb.Snapshot): the index and term of a raft
/// snapshot, so that a reader can start replaying right after it. Index comes first, as in
/// walpb.Snapshot and etcd's snap file names; named arguments (<c>index:</c>, <c>term:</c> in C#,
/// <c>index =</c>, <c>term =</c> in F#) make the order moot.
/// </summary>
public readonly record struct Snapshot
{
    /// <summary>Creates a snapshot marker.</summary>
    /// <param name="index">The index of the last entry the snapshot covers.</param>
    /// <param name="term">The term of that entry.</param>
    /// <param name="confState">The membership at the snapshot (written by etcd 3.5; absent in 3.4 files).</param>
    public Snapshot(ulong index, ulong term, ConfState? confState = null)
    {
        Index = index;
        Term = term;
        ConfState = confState;
    }

    /// <summary>The index of the last entry the snapshot covers.</summary>
    public ulong Index { get; init; }

    /// <summary>The term of that entry.</summary>
    public ulong Term { get; init; }

    /// <summary>The membership at the snapshot (written by etcd 3.5; absent in 3.4 files).</summary>
    public ConfState? ConfState { get; init; }

    /// <summary>The zero snapshot, with which a new WAL starts and at which a full replay opens.</summary>
    public static Snapshot Zero => default;

    /// <summary>Splits the marker into index and term (<c>var (index, term) = snapshot;</c>).</summary>
    /// <param name="index">The index.</param>
    /// <param name="term">The term.</param>
    public void Deconstruct(out ulong index, out ulong term)
    {
        index = Index;
        term = Term;
    }

    /// <summary>Splits the marker into index, term and membership.</summary>
    /// <param name="index">The index.</param>
    /// <param name="term">The term.</param>
    /// <param name="confState">The membership, or null.</param>
    public void Deconstruct(out ulong index, out ulong term, out ConfState? confState)
    {
        index = Index;
        term = Term;
        confState = ConfState;
    }

    /// <summary>Index and term, and the membership when there is one.</summary>
    /// <returns>The description, such as <c>Snapshot(index=2, term=1)</c>.</returns>
    public override string ToString() =>
        ConfState is null ? $"Snapshot(index={Index}, term={Term})" : $"Snapshot(index={Index}, term={Term}, {ConfState})";
}
