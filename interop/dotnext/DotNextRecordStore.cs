using DotNext.Net.Cluster.Consensus.Raft.StateMachine;

namespace Wal.Interop.DotNext;

/// <summary>
/// Raft's records in DotNext's WriteAheadLog (DotNext.Net.Cluster 6.12.0,
/// <c>DotNext.Net.Cluster.Consensus.Raft.StateMachine.WriteAheadLog</c>), used as its docs say: one
/// log entry a record (<c>AppendAsync</c> of a <c>BinaryLogEntry</c>, WAL index = record number, so
/// raft's overwrites are ReadAll's business, not the WAL's); durability by committing everything
/// appended (<c>CommitAsync</c>; its option <c>FlushOnCommit</c>, "every appended or committed log
/// entry must be flushed to disk before [CommitAsync] returns", is obsolete in 6.12: "This
/// property is always true") and then <c>FlushAsync</c> ("flushes and
/// writes the checkpoint"); recovery by constructing the WAL on the directory and
/// <c>InitializeAsync</c>, which reads the checkpoint and verifies each entry's CRC-32, then
/// <c>ReadAsync(1, LastEntryIndex)</c>. Memory is <c>PrivateMemory</c> (pages written with
/// system calls) unless the driver is started with <c>--shared-memory</c> (the default
/// strategy, pages of memory-mapped files, which a recording of system calls cannot follow).
/// The WAL's snapshots would drop entries, so the state machine takes none, and <c>release</c>
/// is a no-op that answers ok.
/// </summary>
public sealed class DotNextRecordStore : IRecordStore
{
    private readonly WriteAheadLog.MemoryManagementStrategy memory;

    /// <summary>A store whose logs keep their pages in <paramref name="memory"/>.</summary>
    /// <param name="memory">The WAL's memory management strategy.</param>
    public DotNextRecordStore(WriteAheadLog.MemoryManagementStrategy memory) => this.memory = memory;

    /// <inheritdoc/>
    public string Name => $"DotNext WriteAheadLog (DotNext.Net.Cluster 6.12.0, {memory})";

    /// <inheritdoc/>
    public IRecordLog Open(string dir, RecordReader read)
    {
        var options = new WriteAheadLog.Options
        {
            Location = dir,
            MemoryManagement = memory,
            HashAlgorithm = WriteAheadLog.IntegrityHashAlgorithm.Crc32,
        };

        var log = new DotNextRecordLog(new WriteAheadLog(options, new RecordStateMachine()));

        try
        {
            log.Initialize();
            log.ReadAll(read);
            return log;
        }
        catch
        {
            log.Dispose();
            throw;
        }
    }
}
