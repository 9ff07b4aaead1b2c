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

let runs =
    [
        measure "1 entry per Save (fdatasync each)" 1 2000
        measure "10 entries per Save" 10 2000
        measure "100 entries per Save" 100 1000
        measure "1000 entries per Save" 1000 200
    ]

let baseline = runs.Head
printfn "100-byte entries, real disk under %s, fdatasync after every Save (etcd's MustSync):" (Path.GetTempPath())
printfn "%-36s %12s %12s %14s %10s %14s" "case" "entries/s" "saves/s" "MB/s payload" "ratio" "alloc B/entry"

for r in runs do
    let perSecond = float r.Entries / r.Seconds

    printfn
        "%-36s %12.0f %12.0f %14.1f %9.1fx %14.1f"
        r.Name
        perSecond
        (float r.Syncs / r.Seconds)
        (perSecond * float payload.Length / 1e6)
        (perSecond / (float baseline.Entries / baseline.Seconds))
        r.AllocatedPerEntry
