namespace Wal.Reading;

/// <summary>What <see cref="SegmentReader.Next"/> found.</summary>
internal enum ReadStatus
{
    /// <summary>A valid record, whose CRC agrees with the chain.</summary>
    Record,

    /// <summary>The data of the last segment ended cleanly (a zero length word or the end of the file).</summary>
    End,

    /// <summary>The last segment ends in a torn or truncated record.</summary>
    UnexpectedEof,

    /// <summary>A record's CRC does not match the chain, and the record is not torn.</summary>
    CrcMismatch,

    /// <summary>
    /// A Crc record (the start of a segment) carries another value than the chain the segment
    /// before it ended with. The record is returned beside this status, for the message.
    /// </summary>
    ChainBroken,

    /// <summary>A record cannot be decoded, and it is not torn.</summary>
    Corrupt,

    /// <summary>A length word claims a record of 10 MiB or more, which etcd refuses to read.</summary>
    TooLarge,
}
