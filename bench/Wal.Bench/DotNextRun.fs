/// DotNext's WriteAheadLog (DotNext.Net.Cluster 6.12.0) on a write workload, with its default
/// options (memory-mapped pages) but 64 MiB chunks, as the engine's segments (the default chunk
/// is so small that 1M entries of 100 B open more files than the process may), and a CRC-32 per
/// entry as the engine has:
/// AppendAsync of each record (a BinaryLogEntry over the caller's bytes), then per Save
/// CommitAsync (which flushes: FlushOnCommit is always on in 6.12) and FlushAsync ("flushes and
/// writes the checkpoint" recovery starts from), as interop/dotnext's driver found durability
/// needs; then a reopen (InitializeAsync) and ReadAsync of every entry.
[<RequireQualifiedAccess>]
module Wal.Bench.DotNextRun

open System
open System.Buffers
open System.Threading.Tasks
open DotNext.Net.Cluster.Consensus.Raft
open DotNext.Net.Cluster.Consensus.Raft.StateMachine

/// Applies nothing and takes no snapshots: the bench reads the log itself.
let private stateMachine =
    { new IStateMachine with
        member _.Snapshot = Unchecked.defaultof<_>
        member _.ApplyAsync(entry, _) = ValueTask.FromResult entry.Index
        member _.ReclaimGarbageAsync(_, _) = ValueTask.CompletedTask
    }

let private openLog (dir: string) =
    let options =
        WriteAheadLog.Options(
            Location = dir,
            HashAlgorithm = WriteAheadLog.IntegrityHashAlgorithm.Crc32,
            ChunkSize = 64 * 1024 * 1024
        )

    let log = new WriteAheadLog(options, stateMachine)
    log.InitializeAsync().GetAwaiter().GetResult()
    log

let private wait (t: ValueTask) = t.AsTask().GetAwaiter().GetResult()

/// Runs warmup untimed Saves, then the workload's Saves, then (if scan) reopens and reads all.
let run (dir: string) (w: Workload) (warmup: int) (scan: bool) =
    let payload = ReadOnlyMemory(Run.payload w.EntryBytes)

    let commit (log: WriteAheadLog) =
        log.CommitAsync(log.LastEntryIndex).AsTask().GetAwaiter().GetResult() |> ignore
        log.FlushAsync().GetAwaiter().GetResult()

    let seconds, cpu, threadBytes, _ =
        let log = openLog dir

        try
            let save () =
                for _ = 1 to w.EntriesPerSave do
                    log.AppendAsync(BinaryLogEntry(Term = 0L, Content = payload)).AsTask().GetAwaiter().GetResult()
                    |> ignore

                if w.SyncPerSave then
                    commit log

            Run.warmUp warmup save

            let clock = Run.start ()

            for _ = 1 to w.Saves do
                save ()

            if not w.SyncPerSave then
                commit log

            Run.stop clock
        finally
            wait (log.DisposeAsync())

    let scanSeconds, scanCpu, scanned, scanBytes =
        if scan then
            Run.bestOfTwo (fun () ->
                let clock = Run.start ()
                let log = openLog dir
                let mutable count = 0

                try
                    let last = log.LastEntryIndex

                    if last >= 1L then
                        use entries = log.ReadAsync(1L, last).AsTask().GetAwaiter().GetResult()

                        for entry in entries do
                            let mutable data = ReadOnlySequence<byte>()

                            if entry.TryGetPayload(&data) then
                                count <- count + 1
                finally
                    wait (log.DisposeAsync())

                let seconds, cpu, _, processBytes = Run.stop clock
                seconds, cpu, count, processBytes)
        else
            0.0, 0.0, 0, 0L

    {
        Seconds = seconds
        CpuSeconds = cpu
        Entries = Workload.entries w
        AllocatedBytes = threadBytes
        CutAllocatedBytes = 0L
        Cuts = 0
        ScanSeconds = scanSeconds
        ScanCpuSeconds = scanCpu
        ScanEntries = scanned
        ScanAllocatedBytes = scanBytes
    }
