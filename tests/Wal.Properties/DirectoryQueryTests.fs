/// The static queries on a log directory: Exists, Verify (the last hard state) and
/// ValidSnapshotEntries (the snapshots at or below the last commit).
module Wal.Properties.DirectoryQueryTests

open Expecto
open System
open Wal
open Wal.Storage
open Wal.Properties.Support
open Wal.Properties.LogFixtures

// ---------------------------------------------------------------------------------------------
// Exists, Verify, ValidSnapshotEntries

let ``Exists: only a directory holding a segment file`` () =
    let fs, options = memoryOptions 65536L
    Expect.isFalse (WalDirectory.Exists(dir, options)) "missing"
    (fs :> IFileSystem).CreateDirectory dir
    Expect.isFalse (WalDirectory.Exists(dir, options)) "empty"
    fs.WriteAllBytes(at "notes.txt", bytes "x")
    Expect.isFalse (WalDirectory.Exists(dir, options)) "foreign files only"
    Expect.isFalse (WalDirectory.Exists(at "notes.txt", options)) "a file"
    Expect.isFalse (WalDirectory.Exists("", options)) "empty path"

    let fs, options = logWith 65536L 1UL
    Expect.isTrue (WalDirectory.Exists(dir, options)) "a log"
    Expect.isTrue (WalDirectory.Exists(dir + "/", options)) "a log, trailing slash"
    Expect.isFalse (WalDirectory.Exists("/data/other", options)) "another path"
    (fs :> IFileSystem).RemoveFile firstPath
    Expect.isFalse (WalDirectory.Exists(dir, options)) "segment removed"

let ``Verify returns the last hard state, across cuts`` () =
    let fs, options = memoryOptions 512L

    do
        use wal = WriteAheadLog.Create(dir, mem "meta", options)

        for i in 1UL .. 30UL do
            wal.Save(HardState(i / 10UL + 1UL, 2UL, i - 1UL), [ entry i ])

        wal.SaveSnapshot(Snapshot(20UL, 3UL))
        wal.Save(HardState(4UL, 2UL, 25UL), List.empty<Entry>)

    Expect.isGreaterThan (segmentsOf fs |> List.length) 2 ""
    Expect.equal (WalDirectory.Verify(dir, Snapshot.Zero, options)) (HardState(4UL, 2UL, 25UL)) ""
    Expect.equal (WalDirectory.Verify(dir, Snapshot(20UL, 3UL), options)) (HardState(4UL, 2UL, 25UL)) ""

    assertKind WalErrorKind.SnapshotMismatch (fun () ->
        WalDirectory.Verify(dir, Snapshot(20UL, 2UL), options) |> ignore)

let ``ValidSnapshotEntries returns the snapshots at or below the last commit index`` () =
    let _, options = memoryOptions 65536L
    let members = ConfState([ 1UL; 2UL; 3UL ], [ 4UL ])

    do
        use wal = WriteAheadLog.Create(dir, mem "meta", options)
        wal.Save(HardState(1UL, 1UL, 5UL), entriesFrom 1UL 10UL)
        wal.SaveSnapshot(Snapshot(3UL, 1UL))
        wal.SaveSnapshot(Snapshot(5UL, 1UL, members))
        wal.SaveSnapshot(Snapshot(7UL, 1UL))
        wal.SaveSnapshot(Snapshot(9UL, 1UL))
        wal.Save(HardState(1UL, 1UL, 7UL), List.empty<Entry>)

    // A snapshot exactly at the commit index counts; one past it does not.
    let valid = WalDirectory.ValidSnapshotEntries(dir, options) |> List.ofSeq

    Expect.equal
        valid
        [
            Snapshot.Zero
            Snapshot(3UL, 1UL)
            Snapshot(5UL, 1UL, members)
            Snapshot(7UL, 1UL)
        ]
        ""

    Expect.equal (valid[2].ConfState) members ""

/// This file's tests.
let tests =
    testList
        "DirectoryQueryTests"
        [
            testCase
                "Exists: only a directory holding a segment file"
                ``Exists: only a directory holding a segment file``
            testCase
                "Verify returns the last hard state, across cuts"
                ``Verify returns the last hard state, across cuts``
            testCase
                "ValidSnapshotEntries returns the snapshots at or below the last commit index"
                ``ValidSnapshotEntries returns the snapshots at or below the last commit index``
        ]
