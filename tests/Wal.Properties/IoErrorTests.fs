/// A failing write, fdatasync or fallocate gives Io once and Failed for every later write (the log
/// fails closed), and reopening keeps everything acknowledged.
module Wal.Properties.IoErrorTests

open Expecto
open System
open System.IO
open Wal
open Wal.Storage
open Wal.Simulation
open Wal.Properties.Support
open Wal.Properties.LogFixtures

// ---------------------------------------------------------------------------------------------
// Io and Failed (fail closed)

/// After a write failed: every further write is Failed, with or without the fault.
let private assertFailedClosed (fs: SimulatedFileSystem) (wal: WriteAheadLog) =
    let check () =
        assertKind WalErrorKind.Failed (fun () -> wal.Save(state 99UL, [ entry 99UL ]))
        assertKind WalErrorKind.Failed (fun () -> wal.Save(HardState(9UL, 9UL, 9UL), List.empty<Entry>))
        assertKind WalErrorKind.Failed (fun () -> wal.Save(HardState.Empty, List.empty<Entry>))
        assertKind WalErrorKind.Failed (fun () -> wal.Sync())
        assertKind WalErrorKind.Failed (fun () -> wal.SaveSnapshot(Snapshot(1UL, 1UL)))

    check ()
    fs.Faults <- []
    check ()
    let ex = expectWalError (fun () -> wal.Sync())
    Expect.isTrue (ex.InnerException :? IOException) ""
    // Closing a failed log does not try to write again, so it does not throw.
    Expect.equal (errorKind (fun () -> wal.Dispose())) None ""

/// Reopens (no faults) and checks that every acknowledged entry is there, in order, and that
/// the log appends again.
let private reopenHolds (options: WalOptions) (acknowledged: Entry list) =
    let read =
        use wal = WriteAheadLog.Open(dir, Snapshot.Zero, options)
        let r = wal.ReadAll()
        let read = entryList r
        let next = uint64 read.Length + 1UL
        wal.Save(state next, [ entry next ])
        read

    Expect.isGreaterThanOrEqual read.Length acknowledged.Length ""
    Expect.equal (List.take acknowledged.Length read) acknowledged ""
    let again = readWrite options Snapshot.Zero |> entryList
    Expect.equal again (read @ [ entry (uint64 read.Length + 1UL) ]) ""

let ``Io, then Failed: a Save whose write or fdatasync fails; reopening keeps what was acknowledged`` (call: string) =
    let fs, options = memoryOptions 65536L
    let wal = WriteAheadLog.Create(dir, mem "meta", options)
    wal.Save(state 3UL, entriesFrom 1UL 3UL)
    wal.Save(state 4UL, [ entry 4UL ])

    fs.Faults <-
        fs.Faults
        @ [
            match call with
            | "fdatasync" -> OnPath(DataSyncCall, firstSegment)
            | _ -> OnPath(WriteCall, firstSegment)
        ]

    let ex = expectWalError (fun () -> wal.Save(state 5UL, [ entry 5UL ]))
    Expect.equal ex.Kind WalErrorKind.Io ""
    Expect.isTrue (ex.InnerException :? IOException) ""
    assertFailedClosed fs wal
    reopenHolds options (entriesFrom 1UL 4UL)

let ``Io, then Failed: SaveSnapshot and Sync whose fdatasync fails`` () =
    let fs, options = memoryOptions 65536L
    let wal = WriteAheadLog.Create(dir, mem "meta", options)
    wal.Save(state 2UL, entriesFrom 1UL 2UL)
    fs.Faults <- fs.Faults @ [ OnPath(DataSyncCall, firstSegment) ]
    assertKind WalErrorKind.Io (fun () -> wal.SaveSnapshot(Snapshot(2UL, 1UL)))
    assertFailedClosed fs wal
    reopenHolds options (entriesFrom 1UL 2UL)

    let fs, options = memoryOptions 65536L
    let wal = WriteAheadLog.Create(dir, mem "meta", options)
    wal.Save(state 1UL, entriesFrom 1UL 2UL)
    // A commit-only state is not synced by Save; Sync must write and sync it.
    wal.Save(state 2UL, List.empty<Entry>)
    fs.Faults <- fs.Faults @ [ OnPath(WriteCall, firstSegment) ]
    assertKind WalErrorKind.Io (fun () -> wal.Sync())
    assertFailedClosed fs wal
    reopenHolds options (entriesFrom 1UL 2UL)

/// Saves entries of 100 bytes one by one until a Save throws; returns the acknowledged entries and the error.
let private saveUntilFailure (wal: WriteAheadLog) =
    let acknowledged = ResizeArray<Entry>()
    let mutable failure = None
    let mutable i = 1UL

    while failure.IsNone && i <= 200UL do
        let e = Entry(1UL, i, ReadOnlyMemory(Array.create 100 (byte i)))

        try
            wal.Save(state i, [ e ])
            acknowledged.Add e
        with :? WalException as ex ->
            failure <- Some ex

        i <- i + 1UL

    List.ofSeq acknowledged, failure

let ``Io, then Failed: preallocating the next segment fails, and the Save that needs the cut says so`` () =
    let fs, options = memoryOptions 512L
    let wal = WriteAheadLog.Create(dir, mem "meta", options)
    // Create has already prepared 0.tmp; preparing 1.tmp (after the first cut) fails.
    fs.Faults <- fs.Faults @ [ OnPath(PreallocateCall, "wal/1.tmp") ]
    let acknowledged, failure = saveUntilFailure wal
    Expect.isTrue failure.IsSome "a Save failed"
    Expect.equal failure.Value.Kind WalErrorKind.Io ""
    // The first cut succeeded with the file prepared before the fault; the second had none.
    Expect.equal (segmentsOf fs |> List.length) 2 ""
    assertFailedClosed fs wal
    reopenHolds options acknowledged

let ``Io, then Failed: fdatasync of the new segment fails during a cut`` () =
    let fs, options = memoryOptions 512L
    let wal = WriteAheadLog.Create(dir, mem "meta", options)
    // Not ".tmp": the first segment's open handle still carries the path Create opened it at,
    // "/data/wal.tmp/...", and the in-memory file system matches faults against that.
    fs.Faults <- fs.Faults @ [ OnPath(DataSyncCall, "wal/0.tmp") ]
    let acknowledged, failure = saveUntilFailure wal
    Expect.isTrue failure.IsSome "a Save failed"
    Expect.equal failure.Value.Kind WalErrorKind.Io ""
    Expect.isNonEmpty acknowledged ""
    // The half-made segment was never renamed into place.
    Expect.equal (segmentsOf fs) [ firstSegment ] ""
    assertFailedClosed fs wal
    reopenHolds options acknowledged

let ``a segment name on a directory is NotRegularFile; a ReadAll that cannot preallocate is Io`` () =
    let fs, options = memoryOptions 65536L
    (fs :> IFileSystem).CreateDirectory firstPath
    assertKind WalErrorKind.NotRegularFile (fun () -> WriteAheadLog.Open(dir, Snapshot.Zero, options).Dispose())

    assertKind WalErrorKind.NotRegularFile (fun () -> WriteAheadLog.OpenForRead(dir, Snapshot.Zero, options).Dispose())

    let fs, options = logWith 65536L 2UL
    fs.Faults <- fs.Faults @ [ OnPath(PreallocateCall, firstSegment) ]

    do
        use wal = WriteAheadLog.Open(dir, Snapshot.Zero, options)
        assertKind WalErrorKind.Io (fun () -> wal.ReadAll() |> ignore)
        assertKind WalErrorKind.InvalidState (fun () -> wal.Save(state 3UL, [ entry 3UL ]))

    fs.Faults <- []
    Expect.equal (readWrite options Snapshot.Zero |> entryList) (entriesFrom 1UL 2UL) ""

let ``Io: Dispose whose final sync fails still closes the log`` () =
    let fs, options = memoryOptions 65536L
    let wal = WriteAheadLog.Create(dir, mem "meta", options)
    wal.Save(state 1UL, entriesFrom 1UL 2UL)
    // A commit-only change is buffered, not written, until a sync.
    wal.Save(state 2UL, List.empty<Entry>)
    fs.Faults <- fs.Faults @ [ OnPath(WriteCall, firstSegment) ]
    assertKind WalErrorKind.Io (fun () -> wal.Dispose())
    assertKind WalErrorKind.Closed (fun () -> wal.Save(state 4UL, [ entry 3UL ]))
    fs.Faults <- []
    // The lock was released.
    let r = readWrite options Snapshot.Zero
    Expect.equal (entryList r) (entriesFrom 1UL 2UL) ""
    // The commit-only state was never written; the synced one before it holds.
    Expect.equal r.State (state 1UL) ""

/// This file's tests.
let tests =
    testList
        "IoErrorTests"
        [
            testCases
                "Io, then Failed: a Save whose write or fdatasync fails; reopening keeps what was acknowledged"
                id
                [ "fdatasync"; "write" ]
                ``Io, then Failed: a Save whose write or fdatasync fails; reopening keeps what was acknowledged``
            testCase
                "Io, then Failed: SaveSnapshot and Sync whose fdatasync fails"
                ``Io, then Failed: SaveSnapshot and Sync whose fdatasync fails``
            testCase
                "Io, then Failed: preallocating the next segment fails, and the Save that needs the cut says so"
                ``Io, then Failed: preallocating the next segment fails, and the Save that needs the cut says so``
            testCase
                "Io, then Failed: fdatasync of the new segment fails during a cut"
                ``Io, then Failed: fdatasync of the new segment fails during a cut``
            testCase
                "a segment name on a directory is NotRegularFile; a ReadAll that cannot preallocate is Io"
                ``a segment name on a directory is NotRegularFile; a ReadAll that cannot preallocate is Io``
            testCase
                "Io: Dispose whose final sync fails still closes the log"
                ``Io: Dispose whose final sync fails still closes the log``
        ]
