/// Locks on the real disk: a writer locks its segments as etcd does, and ReleaseLockTo lets go
/// of the ones a snapshot made unnecessary, keeping the one that holds the index and the tail.
module Wal.Properties.LockTests

open System.IO
open NUnit.Framework
open Wal
open Wal.Storage
open Wal.Properties.Support

/// Whether another open file description could lock the segment now.
let private lockable (path: string) =
    use file = LinuxFileSystem.Instance.OpenFile(path, OpenMode.ReadWrite)
    file.TryLock()

let private segments (dir: string) =
    Directory.GetFiles(dir, "*.wal") |> Array.sort

[<Test>]
let ``ReleaseLockTo unlocks the segments below the index and keeps the rest locked`` () =
    use temp = new TempDir()
    let options = WalOptions(SegmentSizeBytes = 512L)
    use wal = WriteAheadLog.Create(temp.Path, mem "m", options)

    for i in 1UL .. 40UL do
        wal.Save(HardState(1UL, 1UL, i), [| Entry(1UL, i, mem (String.replicate 100 "x")) |])

    let files = segments temp.Path
    Assert.That(files.Length, Is.GreaterThan 4)
    Assert.That(files |> Array.forall (lockable >> not), "the writer holds every segment")

    // The segment whose first index is the first at or above 20 is kept, and the one before it
    // (it may hold entries just below 20), as etcd keeps them.
    let firstIndexOf (path: string) =
        System.Convert.ToUInt64(Path.GetFileName(path).Substring(17, 16), 16)

    let keepFrom = (files |> Array.findIndex (fun f -> firstIndexOf f >= 20UL)) - 1
    wal.ReleaseLockTo 20UL

    for i, file in Array.indexed files do
        Assert.That(lockable file, Is.EqualTo(i < keepFrom), Path.GetFileName file)

    // Releasing past the end keeps the tail locked.
    wal.ReleaseLockTo 1000UL
    Assert.That(lockable (Array.last files), Is.False, "the tail stays locked")
    Assert.That(lockable files[files.Length - 2], Is.True)

[<Test>]
let ``after ReleaseLockTo the log still appends and reads back whole`` () =
    use temp = new TempDir()
    let options = WalOptions(SegmentSizeBytes = 512L)

    do
        use wal = WriteAheadLog.Create(temp.Path, mem "m", options)

        for i in 1UL .. 30UL do
            wal.Save(HardState(1UL, 1UL, i), [| Entry(1UL, i, mem (String.replicate 90 "y")) |])

        wal.ReleaseLockTo 25UL

        for i in 31UL .. 40UL do
            wal.Save(HardState(1UL, 1UL, i), [| Entry(1UL, i, mem "z") |])

    use reader = WriteAheadLog.OpenForRead(temp.Path, Snapshot.Zero, options)
    let result = reader.ReadAll()
    expectEqual [ 1UL .. 40UL ] (result.Entries |> Seq.map _.Index |> List.ofSeq)
    Assert.That(result.State, Is.EqualTo(HardState(1UL, 1UL, 40UL)))
