// Quickstart: create a WAL, save entries, read them back; then the same on a simulated disk
// with a power cut in the middle, and recovery as etcd's server does it.
// Run with: dotnet fsi build.fsx pack && dotnet fsi examples/quickstart.fsx
// (examples/NuGet.Config points at ../artifacts; elsewhere use #i "nuget: <repo>/artifacts".)
#r "nuget: Wal.Core"
#r "nuget: Wal.Simulation"

open System
open System.IO
open System.Text
open Wal

let utf8 (s: string) =
    ReadOnlyMemory(Encoding.UTF8.GetBytes s)

let text (m: ReadOnlyMemory<byte>) = Encoding.UTF8.GetString m.Span

// ---- 1. On the real disk: 200 entries, small segments so that a few are cut.
let dir = Path.Combine(Path.GetTempPath(), $"wal-quickstart-{Guid.NewGuid():N}")
let options = WalOptions(SegmentSizeBytes = 4096L)

do
    use wal = WriteAheadLog.Create(dir, utf8 "node-1", options)

    for i in 1UL .. 200UL do
        wal.Save(HardState(1UL, 1UL, i), [| Entry(1UL, i, utf8 $"put key{i} = value{i}") |])

let contents =
    use wal = WriteAheadLog.Open(dir, Snapshot.Zero, options)
    wal.ReadAll()

printfn "metadata: %s" (text contents.Metadata)
printfn "state:    term=%d vote=%d commit=%d" contents.State.Term contents.State.Vote contents.State.Commit
printfn "entries:  %d" contents.Entries.Count

for e in Seq.truncate 3 contents.Entries do
    printfn "  %d/%d %s" e.Term e.Index (text e.Data)

let segments =
    Directory.GetFiles(dir, "*.wal") |> Array.map Path.GetFileName |> Array.sort

printfn "segments: %s" (String.Join(", ", segments))

if contents.Entries.Count <> 200 || segments.Length < 2 then
    failwith "expected 200 entries over several segments"

Directory.Delete(dir, true)

// ---- 2. On a simulated disk, with a power cut. Saves with entries are fdatasynced before
// they return (etcd's MustSync), so they survive; a commit-only Save may still sit in the
// page writer's buffer, and the cut may take it.
open Wal.Simulation

let simulated = SimulatedFileSystem(DiskState.empty)

let onDisk fs =
    WalOptions(FileSystem = fs, SegmentSizeBytes = 4096L, PrepareSegmentsInBackground = false)

do
    let wal = WriteAheadLog.Create("/data/wal", utf8 "node-1", onDisk simulated)

    for i in 1UL .. 20UL do
        wal.Save(HardState(1UL, 1UL, i - 1UL), [| Entry(1UL, i, utf8 $"put key{i}") |])

    wal.Save(HardState(1UL, 1UL, 20UL), Array.empty) // commit only: not synced
// ... and the power goes, with the log still open.

let rebooted = simulated.AfterPowerCut 42

// Recovery as etcd's server does it: open and read; on a torn tail, Repair once and read again.
let recovered =
    let openAndRead () =
        use wal = WriteAheadLog.Open("/data/wal", Snapshot.Zero, onDisk rebooted)
        wal.ReadAll()

    try
        openAndRead ()
    with :? WalException as e when e.Kind = WalErrorKind.UnexpectedEof ->
        WalDirectory.Repair("/data/wal", onDisk rebooted) |> ignore
        openAndRead ()

printfn "after the power cut: %d entries, commit %d" recovered.Entries.Count recovered.State.Commit

if recovered.Entries.Count <> 20 || recovered.State.Commit < 19UL then
    failwith "an acknowledged, synced Save was lost"
