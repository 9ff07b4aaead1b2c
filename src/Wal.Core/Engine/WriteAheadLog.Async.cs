namespace Wal;

public sealed partial class WriteAheadLog
{
    /// <summary>
    /// <see cref="Save(HardState, ReadOnlySpan{Entry})"/> on the thread pool, so the caller's
    /// thread does not wait on the write and the fdatasync (the kernel offers no asynchronous
    /// fdatasync). Cancellation is honoured only before the write starts: once records are
    /// being written, the Save runs to its end, so a cancelled Save never leaves half of itself
    /// behind.
    /// </summary>
    /// <param name="state">The raft hard state; <see cref="HardState.Empty"/> to leave it out.</param>
    /// <param name="entries">The entries; not to be changed until the task completes.</param>
    /// <param name="cancellationToken">Cancels the Save if it has not started writing.</param>
    /// <returns>A task that completes when Save would have returned.</returns>
    /// <exception cref="OperationCanceledException">Cancelled before anything was written.</exception>
    /// <exception cref="WalException">As <see cref="Save(HardState, ReadOnlySpan{Entry})"/>.</exception>
    public ValueTask SaveAsync(HardState state, ReadOnlyMemory<Entry> entries, CancellationToken cancellationToken = default)
    {
        if (cancellationToken.IsCancellationRequested)
            return ValueTask.FromCanceled(cancellationToken);
        return new ValueTask(Task.Run(() => Save(state, entries.Span, default, null, cancellationToken), cancellationToken));
    }

    /// <summary>Closes the log as <see cref="Dispose"/> does, with its final fdatasync on the thread pool.</summary>
    /// <returns>A task that completes when the log is closed.</returns>
    /// <exception cref="WalException">Io, when the final sync fails; the files are closed all the same.</exception>
    public ValueTask DisposeAsync() => new(Task.Run(Dispose));
}
