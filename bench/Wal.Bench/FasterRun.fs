/// Microsoft's FasterLog (Microsoft.FASTER.Core 2.6.5) on a write workload, with the settings a
/// user starts from (FasterLogSettings(dir): a local device, the default page, memory and segment
/// sizes) and a CRC per entry as the engine has: Enqueue of each record, then CommitAsync (which
/// "completes only when we complete the commit") per Save; then a reopen (recovery from the last
/// commit) and a Scan from BeginAddress to TailAddress.
[<RequireQualifiedAccess>]
module Wal.Bench.FasterRun

open System
open FASTER.core

let private settings (dir: string) =
    new FasterLogSettings(dir, LogChecksum = LogChecksumType.PerEntry)

/// Runs warmup untimed Saves, then the workload's Saves, then (if scan) reopens and scans.
let run (dir: string) (w: Workload) (warmup: int) (scan: bool) =
    let payload = Run.payload w.EntryBytes

    let seconds, cpu, threadBytes, _ =
        use s = settings dir
        use log = new FasterLog(s)

        let save () =
            for _ = 1 to w.EntriesPerSave do
                log.Enqueue(ReadOnlySpan payload) |> ignore

            if w.SyncPerSave then
                log.CommitAsync().AsTask().GetAwaiter().GetResult()

        Run.warmUp warmup save

        let clock = Run.start ()

        for _ = 1 to w.Saves do
            save ()

        if not w.SyncPerSave then
            log.CommitAsync().AsTask().GetAwaiter().GetResult()

        Run.stop clock

    let scanSeconds, scanCpu, scanned, scanBytes =
        if scan then
            Run.bestOfTwo (fun () ->
                let clock = Run.start ()
                use s = settings dir
                use log = new FasterLog(s)
                let mutable count = 0
                use iterator = log.Scan(log.BeginAddress, log.TailAddress)
                let mutable entry: byte array = null
                let mutable length = 0
                let mutable address = 0L

                while iterator.GetNext(&entry, &length, &address) do
                    count <- count + 1

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
