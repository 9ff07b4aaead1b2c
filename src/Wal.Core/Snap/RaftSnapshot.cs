namespace Wal.Snap;

/// <summary>
/// A raft snapshot as etcd keeps it in a member/snap/*.snap file (raftpb.Snapshot): the
/// application's state up to an index, and the membership at that index. Two snapshots are
/// equal when their index, term, membership and data bytes are equal.
/// </summary>
/// <param name="Index">The index of the last entry the snapshot covers.</param>
/// <param name="Term">The term of that entry.</param>
/// <param name="Data">The application's state (for etcd, the v2 store as JSON).</param>
/// <param name="ConfState">The membership at the snapshot; null reads as an empty one.</param>
public sealed record RaftSnapshot(ulong Index, ulong Term, ReadOnlyMemory<byte> Data, ConfState? ConfState = null)
{
    /// <summary>The snapshot record the WAL holds for this snapshot (index and term; etcd 3.4 writes no membership there).</summary>
    public Snapshot WalSnapshot => new(Index, Term);

    /// <summary>The name etcd gives the snapshot's file: <c>%016x-%016x.snap</c> of term and index.</summary>
    public string FileName => SnapName.Format(Term, Index);

    /// <summary>Compares index, term, membership (null as empty) and the data's bytes.</summary>
    /// <param name="other">The snapshot to compare with.</param>
    /// <returns>True when both hold the same snapshot.</returns>
    public bool Equals(RaftSnapshot? other) =>
        other is not null
        && Index == other.Index
        && Term == other.Term
        && (ConfState ?? Empty).Equals(other.ConfState ?? Empty)
        && Data.Span.SequenceEqual(other.Data.Span);

    /// <summary>A hash over index, term and data.</summary>
    /// <returns>The hash code.</returns>
    public override int GetHashCode()
    {
        var hash = new HashCode();
        hash.Add(Index);
        hash.Add(Term);
        hash.AddBytes(Data.Span);
        return hash.ToHashCode();
    }

    /// <summary>A short description: index, term, membership and data length.</summary>
    /// <returns>The description.</returns>
    public override string ToString() =>
        $"RaftSnapshot(index={Index}, term={Term}, {Data.Length} bytes, {ConfState ?? Empty})";

    private static readonly ConfState Empty = new();
}
