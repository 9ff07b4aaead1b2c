using FASTER.core;

namespace Wal.Interop.Faster;

/// <summary>An open FasterLog; it owns the log and its settings (which own the device).</summary>
public sealed class FasterRecordLog : IRecordLog
{
    private readonly FasterLog log;
    private readonly FasterLogSettings settings;

    /// <summary>Takes ownership of an open log and the settings it was opened with.</summary>
    /// <param name="log">The log.</param>
    /// <param name="settings">Its settings, disposed with it.</param>
    public FasterRecordLog(FasterLog log, FasterLogSettings settings)
    {
        this.log = log;
        this.settings = settings;
    }

    /// <inheritdoc/>
    public void Append(ReadOnlySpan<byte> record) => log.Enqueue(record);

    /// <inheritdoc/>
    public void Commit() => log.CommitAsync().AsTask().GetAwaiter().GetResult();

    /// <inheritdoc/>
    public void Dispose()
    {
        log.Dispose();
        settings.Dispose();
    }
}
