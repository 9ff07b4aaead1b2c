namespace Wal;

/// <summary>The kind of a raft log entry (raftpb.EntryType).</summary>
public enum EntryType
{
    /// <summary>An ordinary entry carrying application data.</summary>
    Normal = 0,

    /// <summary>A raft configuration change (raftpb.ConfChange).</summary>
    ConfChange = 1,

    /// <summary>A joint-consensus configuration change (raftpb.ConfChangeV2).</summary>
    ConfChangeV2 = 2,
}
