/// Locks on the real disk: a writer locks its segments as etcd does, and ReleaseLockTo lets go
/// of the ones a snapshot made unnecessary, keeping the one that holds the index and the tail.
module Wal.Properties.LockTests

open System.IO
open Expecto
open Wal
open Wal.Storage
open Wal.Properties.Support

/// Whether another open file description could lock the segment now.
let private lockable (path: string) =
    use file = LinuxFileSystem.Instance.OpenFile(path, OpenMode.ReadWrite)
    file.TryLock()

let private segments (dir: string) =
    Directory.GetFiles(dir, "*.wal") |> Array.sort

let ``ReleaseLockTo unlocks the segments below the index and keeps the rest locked`` () =
    use temp = new TempDir()
    let options = WalOptions(SegmentSizeBytes = 512L)
    use wal = WriteAheadLog.Create(temp.Path, mem "m", options)

    for i in 1UL .. 40UL do
        wal.Save(HardState(1UL, 1UL, i), [| Entry(1UL, i, mem (String.replicate 100 "x")) |])

    let files = segments temp.Path
    Expect.isGreaterThan files.Length 4 ""
    Expect.isTrue (files |> Array.forall (lockable >> not)) "the writer holds every segment"

    // The segment whose first index is the first at or above 20 is kept, and the one before it
    // (it may hold entries just below 20), as etcd keeps them.
    let firstIndexOf (path: string) =
        System.Convert.ToUInt64(Path.GetFileName(path).Substring(17, 16), 16)

    let keepFrom = (files |> Array.findIndex (fun f -> firstIndexOf f >= 20UL)) - 1
    wal.ReleaseLockTo 20UL

    for i, file in Array.indexed files do
        Expect.equal (lockable file) (i < keepFrom) (Path.GetFileName file)

    // Releasing past the end keeps the tail locked.
    wal.ReleaseLockTo 1000UL
    Expect.isFalse (lockable (Array.last files)) "the tail stays locked"
    Expect.isTrue (lockable files[files.Length - 2]) ""

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
    Expect.equal (result.Entries |> Seq.map _.Index |> List.ofSeq) [ 1UL .. 40UL ] ""
    Expect.equal result.State (HardState(1UL, 1UL, 40UL)) ""

let ``an Open refused as Locked lets go of the segments it locked before the refusal`` () =
    use temp = new TempDir()
    let options = WalOptions(SegmentSizeBytes = 512L)

    do
        use wal = WriteAheadLog.Create(temp.Path, mem "m", options)

        for i in 1UL .. 20UL do
            wal.Save(HardState(1UL, 1UL, i), [| Entry(1UL, i, mem (String.replicate 100 "x")) |])

    let files = segments temp.Path
    Expect.isGreaterThan files.Length 2 ""

    do
        // Another writer holds the last segment.
        use other = LinuxFileSystem.Instance.OpenFile(Array.last files, OpenMode.ReadWrite)
        Expect.isTrue (other.TryLock()) ""

        let refused =
            try
                WriteAheadLog.Open(temp.Path, Snapshot.Zero, options).Dispose()
                None
            with :? WalException as ex ->
                Some ex.Kind

        Expect.equal refused (Some WalErrorKind.Locked) ""

        for file in files[.. files.Length - 2] do
            Expect.isTrue (lockable file) $"{Path.GetFileName file} was let go"

    use wal = WriteAheadLog.Open(temp.Path, Snapshot.Zero, options)
    Expect.equal (wal.ReadAll().Entries.Count) 20 ""

/// This file's tests.
let tests =
    testList
        "LockTests"
        [
            testCase
                "ReleaseLockTo unlocks the segments below the index and keeps the rest locked"
                ``ReleaseLockTo unlocks the segments below the index and keeps the rest locked``
            testCase
                "after ReleaseLockTo the log still appends and reads back whole"
                ``after ReleaseLockTo the log still appends and reads back whole``
            testCase
                "an Open refused as Locked lets go of the segments it locked before the refusal"
                ``an Open refused as Locked lets go of the segments it locked before the refusal``
        ]
