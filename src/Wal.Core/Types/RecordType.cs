namespace Wal;

/// <summary>walpb.Record's type field: what a record in a segment holds.</summary>
public enum RecordType : long
{
    /// <summary>The metadata given to Create, repeated at the start of every segment.</summary>
    Metadata = 1,

    /// <summary>A raftpb.Entry.</summary>
    Entry = 2,

    /// <summary>A raftpb.HardState.</summary>
    State = 3,

    /// <summary>The CRC chain's value at the start of a segment.</summary>
    Crc = 4,

    /// <summary>A walpb.Snapshot: the index and term of a snapshot the application took.</summary>
    Snapshot = 5,
}
