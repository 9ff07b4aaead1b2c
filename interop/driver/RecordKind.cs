namespace Wal.Interop;

/// <summary>The kinds of raft's records kept in a third-party log (the first byte of each record).</summary>
public enum RecordKind : byte
{
    /// <summary>The log's metadata, written by create.</summary>
    Metadata = 1,

    /// <summary>A raft entry.</summary>
    Entry = 2,

    /// <summary>A non-empty hard state (term, vote, commit).</summary>
    HardState = 3,

    /// <summary>A snapshot marker (index, term).</summary>
    Snapshot = 4,
}
