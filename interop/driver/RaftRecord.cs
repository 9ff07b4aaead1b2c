namespace Wal.Interop;

/// <summary>
/// One of raft's records as the drivers keep it: an entry (<see cref="Term"/>, <see cref="Index"/>,
/// <see cref="EntryType"/>, <see cref="Data"/>), a hard state (<see cref="Term"/>, <see cref="Vote"/>,
/// <see cref="Commit"/>), a snapshot marker (<see cref="Index"/>, <see cref="Term"/>) or the metadata
/// (<see cref="Data"/>). Fields a kind does not use are zero or empty.
/// </summary>
/// <param name="Kind">Which record this is.</param>
/// <param name="Term">The entry's, hard state's or snapshot's term.</param>
/// <param name="Index">The entry's or snapshot's index.</param>
/// <param name="Vote">The hard state's vote.</param>
/// <param name="Commit">The hard state's commit index.</param>
/// <param name="EntryType">The entry's type (raftpb's EntryType).</param>
/// <param name="Data">The entry's data or the metadata.</param>
public readonly record struct RaftRecord(
    RecordKind Kind,
    ulong Term,
    ulong Index,
    ulong Vote,
    ulong Commit,
    ulong EntryType,
    ReadOnlyMemory<byte> Data)
{
    /// <summary>The metadata record.</summary>
    /// <param name="metadata">The metadata.</param>
    /// <returns>The record.</returns>
    public static RaftRecord OfMetadata(ReadOnlyMemory<byte> metadata) =>
        new(RecordKind.Metadata, 0, 0, 0, 0, 0, metadata);

    /// <summary>An entry record.</summary>
    /// <param name="term">The entry's term.</param>
    /// <param name="index">The entry's index.</param>
    /// <param name="type">The entry's type.</param>
    /// <param name="data">The entry's data.</param>
    /// <returns>The record.</returns>
    public static RaftRecord OfEntry(ulong term, ulong index, ulong type, ReadOnlyMemory<byte> data) =>
        new(RecordKind.Entry, term, index, 0, 0, type, data);

    /// <summary>A hard state record.</summary>
    /// <param name="term">The term.</param>
    /// <param name="vote">The vote.</param>
    /// <param name="commit">The commit index.</param>
    /// <returns>The record.</returns>
    public static RaftRecord OfHardState(ulong term, ulong vote, ulong commit) =>
        new(RecordKind.HardState, term, 0, vote, commit, 0, ReadOnlyMemory<byte>.Empty);

    /// <summary>A snapshot marker record.</summary>
    /// <param name="index">The snapshot's index.</param>
    /// <param name="term">The snapshot's term.</param>
    /// <returns>The record.</returns>
    public static RaftRecord OfSnapshot(ulong index, ulong term) =>
        new(RecordKind.Snapshot, term, index, 0, 0, 0, ReadOnlyMemory<byte>.Empty);
}
