namespace Wal;

/// <summary>
/// A raft log entry as the WAL stores it (raftpb.Entry). Two entries are equal when their
/// term, index, type and data bytes are equal.
/// </summary>
/// <param name="Term">The raft term in which the entry was proposed.</param>
/// <param name="Index">The entry's position in the raft log; the first entry has index 1.</param>
/// <param name="Type">The kind of entry.</param>
/// <param name="Data">The entry's payload; empty data is stored as an absent field, as etcd stores nil.</param>
public readonly record struct Entry(ulong Term, ulong Index, EntryType Type, ReadOnlyMemory<byte> Data)
{
    /// <summary>Creates a <see cref="EntryType.Normal"/> entry.</summary>
    /// <param name="term">The raft term.</param>
    /// <param name="index">The raft index.</param>
    /// <param name="data">The payload.</param>
    public Entry(ulong term, ulong index, ReadOnlyMemory<byte> data)
        : this(term, index, EntryType.Normal, data) { }

    /// <summary>Compares term, index, type and the data's bytes.</summary>
    /// <param name="other">The entry to compare with.</param>
    /// <returns>True when both entries hold the same values.</returns>
    public bool Equals(Entry other) =>
        Term == other.Term
        && Index == other.Index
        && Type == other.Type
        && Data.Span.SequenceEqual(other.Data.Span);

    /// <summary>A hash over term, index, type and data.</summary>
    /// <returns>The hash code.</returns>
    public override int GetHashCode()
    {
        var hash = new HashCode();
        hash.Add(Term);
        hash.Add(Index);
        hash.Add(Type);
        hash.AddBytes(Data.Span);
        return hash.ToHashCode();
    }

    /// <summary>A short description: term, index, type and data length.</summary>
    /// <returns>The description.</returns>
    public override string ToString() => $"Entry(term={Term}, index={Index}, {Type}, {Data.Length} bytes)";
}
