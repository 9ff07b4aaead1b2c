namespace Wal.Format;

/// <summary>How a walpb.Record's bytes decoded.</summary>
internal enum RecordParse
{
    /// <summary>A record.</summary>
    Ok,

    /// <summary>A field runs past the end of the bytes (gogo's io.ErrUnexpectedEOF).</summary>
    Truncated,

    /// <summary>Anything else gogo refuses: a bad tag or wire type, an overlong varint, a negative length.</summary>
    Invalid,
}
