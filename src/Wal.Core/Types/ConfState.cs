namespace Wal;

/// <summary>
/// The raft membership at a snapshot (raftpb.ConfState, etcd 3.5). Two values are equal when
/// all their lists hold the same ids in the same order.
/// </summary>
public sealed class ConfState : IEquatable<ConfState>
{
    /// <summary>Creates a configuration.</summary>
    /// <param name="voters">The voters of the incoming configuration.</param>
    /// <param name="learners">The learners of the incoming configuration.</param>
    /// <param name="votersOutgoing">The voters of the outgoing configuration (joint consensus).</param>
    /// <param name="learnersNext">Nodes that become learners when the outgoing configuration is left.</param>
    /// <param name="autoLeave">Whether the joint configuration is left automatically.</param>
    public ConfState(
        IEnumerable<ulong>? voters = null,
        IEnumerable<ulong>? learners = null,
        IEnumerable<ulong>? votersOutgoing = null,
        IEnumerable<ulong>? learnersNext = null,
        bool autoLeave = false)
    {
        Voters = [.. voters ?? []];
        Learners = [.. learners ?? []];
        VotersOutgoing = [.. votersOutgoing ?? []];
        LearnersNext = [.. learnersNext ?? []];
        AutoLeave = autoLeave;
    }

    /// <summary>The voters of the incoming configuration.</summary>
    public IReadOnlyList<ulong> Voters { get; }

    /// <summary>The learners of the incoming configuration.</summary>
    public IReadOnlyList<ulong> Learners { get; }

    /// <summary>The voters of the outgoing configuration.</summary>
    public IReadOnlyList<ulong> VotersOutgoing { get; }

    /// <summary>Nodes that become learners when the outgoing configuration is left.</summary>
    public IReadOnlyList<ulong> LearnersNext { get; }

    /// <summary>Whether the joint configuration is left automatically.</summary>
    public bool AutoLeave { get; }

    /// <summary>Splits the configuration into its five values.</summary>
    /// <param name="voters">The voters of the incoming configuration.</param>
    /// <param name="learners">The learners of the incoming configuration.</param>
    /// <param name="votersOutgoing">The voters of the outgoing configuration.</param>
    /// <param name="learnersNext">Nodes that become learners when the outgoing configuration is left.</param>
    /// <param name="autoLeave">Whether the joint configuration is left automatically.</param>
    public void Deconstruct(
        out IReadOnlyList<ulong> voters,
        out IReadOnlyList<ulong> learners,
        out IReadOnlyList<ulong> votersOutgoing,
        out IReadOnlyList<ulong> learnersNext,
        out bool autoLeave)
    {
        voters = Voters;
        learners = Learners;
        votersOutgoing = VotersOutgoing;
        learnersNext = LearnersNext;
        autoLeave = AutoLeave;
    }

    /// <summary>Compares every list element by element, and the auto-leave flag.</summary>
    /// <param name="other">The configuration to compare with.</param>
    /// <returns>True when both hold the same membership.</returns>
    public bool Equals(ConfState? other) =>
        other is not null
        && Voters.SequenceEqual(other.Voters)
        && Learners.SequenceEqual(other.Learners)
        && VotersOutgoing.SequenceEqual(other.VotersOutgoing)
        && LearnersNext.SequenceEqual(other.LearnersNext)
        && AutoLeave == other.AutoLeave;

    /// <inheritdoc cref="Equals(ConfState)"/>
    public override bool Equals(object? obj) => Equals(obj as ConfState);

    /// <summary>A hash over the voters and the auto-leave flag.</summary>
    /// <returns>The hash code.</returns>
    public override int GetHashCode()
    {
        var hash = new HashCode();
        foreach (var v in Voters)
            hash.Add(v);
        hash.Add(AutoLeave);
        return hash.ToHashCode();
    }

    /// <summary>The membership in one line.</summary>
    /// <returns>The description.</returns>
    public override string ToString() =>
        $"ConfState(voters=[{string.Join(",", Voters)}], learners=[{string.Join(",", Learners)}], "
        + $"votersOutgoing=[{string.Join(",", VotersOutgoing)}], learnersNext=[{string.Join(",", LearnersNext)}], autoLeave={AutoLeave})";
}
