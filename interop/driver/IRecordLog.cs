namespace Wal.Interop;

/// <summary>
/// An open third-party log of records, as a driver uses it: append records in memory, commit
/// (make everything appended durable), dispose (close the log without committing).
/// </summary>
public interface IRecordLog : IDisposable
{
    /// <summary>Appends one record; it need not be durable until <see cref="Commit"/>.</summary>
    /// <param name="record">The record's bytes (the log copies them).</param>
    void Append(ReadOnlySpan<byte> record);

    /// <summary>Makes every record appended so far durable, as the library promises it on commit.</summary>
    void Commit();
}
