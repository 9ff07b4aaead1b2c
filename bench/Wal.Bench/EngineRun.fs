/// The engine on a write workload: WriteAheadLog.Save of each batch (which fdatasyncs, as etcd's
/// MustSync says), then OpenForRead and ReadAll of the whole log.
[<RequireQualifiedAccess>]
module Wal.Bench.EngineRun

open System
open Wal

/// Runs warmup untimed Saves, then the workload's Saves, then (if scan) ReadAll, with `options`.
let runWith (options: WalOptions) (dir: string) (w: Workload) (warmup: int) (scan: bool) =
    let payload = ReadOnlyMemory(Run.payload w.EntryBytes)
    let batch = Array.zeroCreate<Entry> w.EntriesPerSave
    let mutable index = 0UL

    // Segments cut, from the engine's metrics: a cut allocates (a file, its name, a task), once a
    // segment, and what the Saves that cut allocated is told apart from the rest.
    use cuts = new EngineCounter(WalMetrics.SegmentsCut)
    let mutable cutBytes = 0L

    let timed =
        use wal = WriteAheadLog.Create(dir, ReadOnlyMemory [| 1uy |], options)

        let save () =
            for i in 0 .. batch.Length - 1 do
                index <- index + 1UL
                batch[i] <- Entry(1UL, index, payload)

            wal.Save(HardState(1UL, 1UL, index), ReadOnlySpan batch)

        Run.warmUp warmup save
        let cutsBefore = cuts.Total
        let clock = Run.start ()

        for _ = 1 to w.Saves do
            let before = GC.GetAllocatedBytesForCurrentThread()
            let cutsNow = cuts.Total
            save ()

            if cuts.Total <> cutsNow then
                cutBytes <- cutBytes + GC.GetAllocatedBytesForCurrentThread() - before

        Run.stop clock, int (cuts.Total - cutsBefore)

    let (seconds, cpu, threadBytes, _), cutCount = timed

    let scanned =
        if scan then
            Run.bestOfTwo (fun () ->
                let clock = Run.start ()
                use wal = WriteAheadLog.OpenForRead(dir, Snapshot.Zero)
                let all = wal.ReadAll()
                let seconds, cpu, _, processBytes = Run.stop clock
                GC.KeepAlive all
                seconds, cpu, all.Entries.Count, processBytes)
        else
            0.0, 0.0, 0, 0L

    let scanSeconds, scanCpu, scanEntries, scanBytes = scanned

    {
        Seconds = seconds
        CpuSeconds = cpu
        Entries = Workload.entries w
        AllocatedBytes = threadBytes
        CutAllocatedBytes = cutBytes
        Cuts = cutCount
        ScanSeconds = scanSeconds
        ScanCpuSeconds = scanCpu
        ScanEntries = scanEntries
        ScanAllocatedBytes = scanBytes
    }

/// Runs warmup untimed Saves, then the workload's Saves, then (if scan) ReadAll, as etcd would.
let run (dir: string) (w: Workload) (warmup: int) (scan: bool) =
    runWith (WalOptions()) dir w warmup scan

/// What the engine writes per Save of the workload, in bytes, from its own metrics
/// (wal.bytes.written over a few Saves): the raw loop writes as many.
let bytesPerSave (w: Workload) =
    let dir =
        IO.Path.Combine(IO.Path.GetTempPath(), $"wal-bench-size-{Guid.NewGuid():N}")

    use written = new EngineCounter(WalMetrics.BytesWritten)

    try
        use wal = WriteAheadLog.Create(dir, ReadOnlyMemory [| 1uy |])
        let payload = ReadOnlyMemory(Run.payload w.EntryBytes)
        let batch = Array.zeroCreate<Entry> w.EntriesPerSave
        let mutable index = 0UL

        let save () =
            for i in 0 .. batch.Length - 1 do
                index <- index + 1UL
                batch[i] <- Entry(1UL, index, payload)

            wal.Save(HardState(1UL, 1UL, index), ReadOnlySpan batch)

        save ()
        let before = written.Total
        let saves = 10

        for _ = 1 to saves do
            save ()

        int ((written.Total - before) / int64 saves)
    finally
        if IO.Directory.Exists dir then
            IO.Directory.Delete(dir, true)
