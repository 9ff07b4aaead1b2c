using DotNext.Net.Cluster.Consensus.Raft.StateMachine;

namespace Wal.Interop.DotNext;

/// <summary>
/// The state machine the WAL applies committed records to. The driver reads records back from the
/// log itself, so applying does nothing, and there are no snapshots: a snapshot would let the WAL
/// drop the records it covers, which ReadAll at a lower snapshot still needs.
/// </summary>
public sealed class RecordStateMachine : IStateMachine
{
    /// <inheritdoc/>
    public ISnapshot? Snapshot => null;

    /// <inheritdoc/>
    public ValueTask<long> ApplyAsync(LogEntry entry, CancellationToken token) => ValueTask.FromResult(entry.Index);

    /// <inheritdoc/>
    public ValueTask ReclaimGarbageAsync(long watermark, CancellationToken token) => ValueTask.CompletedTask;
}
