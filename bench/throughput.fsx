// Write-path figures for the engine on the real disk, printed side by side so that ratios,
// not absolute numbers, carry the meaning on a shared, noisy machine.
// Run: dotnet fsi build.fsx bench   (or, after a build: dotnet fsi bench/throughput.fsx)
#r "../src/Wal.Core/bin/Release/net10.0/Google.Protobuf.dll"
#r "../src/Wal.Core/bin/Release/net10.0/Wal.Core.dll"

open System
open System.Diagnostics
open System.IO
open Wal

let payload = Array.init 100 byte

type Figures =
    {
        Name: string
        Entries: int
        Seconds: float
        Syncs: int
        AllocatedPerEntry: float
    }

let measure name (entriesPerSave: int) (saves: int) =
    let dir = Path.Combine(Path.GetTempPath(), $"wal-bench-{Guid.NewGuid():N}")

    try
        use wal = WriteAheadLog.Create(dir, ReadOnlyMemory [| 1uy |])
        let batch = Array.zeroCreate<Entry> entriesPerSave
        let mutable index = 0UL
        // Warm up the JIT and the page writer before measuring.
        for _ in 1..50 do
            for i in 0 .. entriesPerSave - 1 do
                index <- index + 1UL
                batch[i] <- Entry(1UL, index, ReadOnlyMemory payload)

            wal.Save(HardState(1UL, 1UL, index), ReadOnlySpan batch)

        let allocatedBefore = GC.GetAllocatedBytesForCurrentThread()
        let clock = Stopwatch.StartNew()

        for _ in 1..saves do
            for i in 0 .. entriesPerSave - 1 do
                index <- index + 1UL
                batch[i] <- Entry(1UL, index, ReadOnlyMemory payload)
            // A Save with entries always syncs (etcd's MustSync).
            wal.Save(HardState(1UL, 1UL, index), ReadOnlySpan batch)

        clock.Stop()
        let allocated = GC.GetAllocatedBytesForCurrentThread() - allocatedBefore

        {
            Name = name
            Entries = saves * entriesPerSave
            Seconds = clock.Elapsed.TotalSeconds
            Syncs = saves
            AllocatedPerEntry = float allocated / float (saves * entriesPerSave)
        }
    finally
        if Directory.Exists dir then
            Directory.Delete(dir, true)

/// etcd 3.4's own wal on the same workload, through the peer (interop/etcd/peer), when built.
let peer =
    Path.Combine(__SOURCE_DIRECTORY__, "..", "interop", "etcd", "bin", "etcd-peer")

let etcdSeconds (entriesPerSave: int) (saves: int) =
    if not (File.Exists peer) then
        None
    else
        let dir = Path.Combine(Path.GetTempPath(), $"wal-bench-etcd-{Guid.NewGuid():N}")

        let info =
            ProcessStartInfo(peer, [ "bench"; dir; string entriesPerSave; string saves ], RedirectStandardOutput = true)

        use proc = Process.Start info
        let out = proc.StandardOutput.ReadToEnd()
        proc.WaitForExit()

        if proc.ExitCode <> 0 then
            None
        else
            use doc = Text.Json.JsonDocument.Parse out
            Some(doc.RootElement.GetProperty("seconds").GetDouble())

/// Each case runs engine, etcd, etcd, engine (ABBA): whichever runs second after the other
/// measurably gains or loses (the disk is still busy with the other's deletes and journal), so
/// each side's figure is the mean of one run in each position.
let cases =
    [
        "1 entry per Save (fdatasync each)", 1, 2000
        "10 entries per Save", 10, 2000
        "100 entries per Save", 100, 1000
        "1000 entries per Save", 1000, 200
    ]

let runs =
    [
        for name, perSave, saves in cases ->
            let first = measure name perSave saves
            let etcd1 = etcdSeconds perSave saves
            let etcd2 = etcdSeconds perSave saves
            let second = measure name perSave saves

            let engine =
                { first with
                    Seconds = (first.Seconds + second.Seconds) / 2.0
                    AllocatedPerEntry = max first.AllocatedPerEntry second.AllocatedPerEntry
                }

            engine, Option.map2 (fun a b -> (a + b) / 2.0) etcd1 etcd2
    ]

let baseline = fst runs.Head
printfn "100-byte entries, real disk under %s, fdatasync after every Save (etcd's MustSync):" (Path.GetTempPath())

printfn
    "%-36s %12s %12s %14s %10s %14s %14s %9s"
    "case"
    "entries/s"
    "saves/s"
    "MB/s payload"
    "ratio"
    "alloc B/entry"
    "etcd entries/s"
    "vs etcd"

for r, etcd in runs do
    let perSecond = float r.Entries / r.Seconds

    let etcdColumns =
        match etcd with
        | Some seconds ->
            let etcdPerSecond = float r.Entries / seconds
            sprintf "%14.0f %8.2fx" etcdPerSecond (perSecond / etcdPerSecond)
        | None -> sprintf "%14s %9s" "-" "-"

    printfn
        "%-36s %12.0f %12.0f %14.1f %9.1fx %14.1f %s"
        r.Name
        perSecond
        (float r.Syncs / r.Seconds)
        (perSecond * float payload.Length / 1e6)
        (perSecond / (float baseline.Entries / baseline.Seconds))
        r.AllocatedPerEntry
        etcdColumns

if runs |> List.exists (snd >> Option.isNone) then
    printfn "(etcd columns: build the peer with `dotnet fsi build.fsx peer`)"
