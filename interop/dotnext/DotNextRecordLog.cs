using System.Buffers;
using DotNext.Net.Cluster.Consensus.Raft;
using DotNext.Net.Cluster.Consensus.Raft.StateMachine;

namespace Wal.Interop.DotNext;

/// <summary>An open DotNext WriteAheadLog; it owns the log.</summary>
public sealed class DotNextRecordLog : IRecordLog
{
    private readonly WriteAheadLog log;

    /// <summary>Takes ownership of an open, initialised log.</summary>
    /// <param name="log">The log.</param>
    public DotNextRecordLog(WriteAheadLog log) => this.log = log;

    /// <inheritdoc/>
    public void Append(ReadOnlySpan<byte> record) =>
        log.AppendAsync(new BinaryLogEntry { Term = 0, Content = record.ToArray() }).AsTask().GetAwaiter().GetResult();

    /// <inheritdoc/>
    public void Commit()
    {
        // FlushOnCommit is always on in 6.12: CommitAsync returns when the committed records are flushed;
        // FlushAsync then "flushes and writes the checkpoint" that recovery starts from.
        log.CommitAsync(log.LastEntryIndex).AsTask().GetAwaiter().GetResult();
        log.FlushAsync().GetAwaiter().GetResult();
    }

    /// <summary>Recovery's second half: applies the committed records (to a state machine that ignores them).</summary>
    public void Initialize() => log.InitializeAsync().GetAwaiter().GetResult();

    /// <summary>Passes every record the log holds (1 to <c>LastEntryIndex</c>) to <paramref name="read"/>.</summary>
    /// <param name="read">Called with each record in order.</param>
    public void ReadAll(RecordReader read)
    {
        var last = log.LastEntryIndex;

        if (last < 1)
        {
            return;
        }

        using var entries = log.ReadAsync(1, last).AsTask().GetAwaiter().GetResult();

        foreach (var entry in entries)
        {
            if (!entry.TryGetPayload(out var payload))
            {
                throw new InvalidDataException($"the log entry {entry.Index} is a snapshot");
            }

            read(payload.IsSingleSegment ? payload.FirstSpan : payload.ToArray());
        }
    }

    /// <inheritdoc/>
    public void Dispose() => log.DisposeAsync().AsTask().GetAwaiter().GetResult();
}
