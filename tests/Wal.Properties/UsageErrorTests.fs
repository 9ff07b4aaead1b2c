/// Calls the log refuses for how they are made, not for what is on disk: AlreadyExists, Locked,
/// Closed, InvalidArgument and InvalidState; a refused call writes nothing.
module Wal.Properties.UsageErrorTests

open Expecto
open System
open Wal
open Wal.Storage
open Wal.Simulation
open Wal.Properties.Support
open Wal.Properties.LogFixtures

// ---------------------------------------------------------------------------------------------
// AlreadyExists

let ``AlreadyExists: Create on a directory that holds a file`` () =
    let fs, options = memoryOptions 65536L
    (fs :> IFileSystem).CreateDirectory dir
    fs.WriteAllBytes(at "notes.txt", bytes "keep me")
    assertKind WalErrorKind.AlreadyExists (fun () -> WriteAheadLog.Create(dir, mem "meta", options).Dispose())
    Expect.equal (fs.List dir) [ "notes.txt" ] ""
    Expect.equal (fs.ReadAllBytes(at "notes.txt")) (bytes "keep me") ""
    Expect.equal (fs.List "/data") [ "wal" ] ""

let ``AlreadyExists: Create on an existing log leaves it as it was`` () =
    let fs, options = logWith 65536L 3UL
    let before = fs.ReadAllBytes firstPath
    assertKind WalErrorKind.AlreadyExists (fun () -> WriteAheadLog.Create(dir, mem "other", options).Dispose())
    Expect.equal (fs.ReadAllBytes firstPath) before ""
    let r = readWrite options Snapshot.Zero
    Expect.equal (entryList r) (entriesFrom 1UL 3UL) ""
    Expect.equal (r.Metadata.ToArray()) (bytes "meta") ""

let ``AlreadyExists: Create on a path that is a file`` () =
    let fs, options = memoryOptions 65536L
    (fs :> IFileSystem).CreateDirectory "/data"
    fs.WriteAllBytes(dir, bytes "a file")
    assertKind WalErrorKind.AlreadyExists (fun () -> WriteAheadLog.Create(dir, mem "meta", options).Dispose())
    Expect.equal (fs.ReadAllBytes dir) (bytes "a file") ""
    Expect.equal (fs.List "/data") [ "wal" ] ""

let ``Create on an existing empty directory succeeds`` () =
    let fs, options = memoryOptions 65536L
    (fs :> IFileSystem).CreateDirectory dir

    do
        use wal = WriteAheadLog.Create(dir, mem "meta", options)
        wal.Save(state 2UL, entriesFrom 1UL 2UL)

    let r = readWrite options Snapshot.Zero
    Expect.equal (entryList r) (entriesFrom 1UL 2UL) ""
    Expect.equal (fs.List "/data") [ "wal" ] ""

// ---------------------------------------------------------------------------------------------
// Locked (real disk)

let ``Locked: a second writer cannot open a log a writer holds; a reader can`` () =
    use tmp = new TempDir()
    let options = WalOptions(SegmentSizeBytes = 64L * 1024L)
    let wal = WriteAheadLog.Create(tmp.Path, mem "meta", options)

    try
        wal.Save(state 3UL, entriesFrom 1UL 3UL)
        assertKind WalErrorKind.Locked (fun () -> WriteAheadLog.Open(tmp.Path, Snapshot.Zero, options).Dispose())
        assertKind WalErrorKind.Locked (fun () -> WalDirectory.Repair(tmp.Path, options) |> ignore)

        do
            use reader = WriteAheadLog.OpenForRead(tmp.Path, Snapshot.Zero, options)
            Expect.equal (entryList (reader.ReadAll())) (entriesFrom 1UL 3UL) ""

        Expect.equal (WalDirectory.Verify(tmp.Path, Snapshot.Zero, options)) (state 3UL) ""
        // The writer is unharmed by the failed attempts.
        wal.Save(state 4UL, [ entry 4UL ])
    finally
        wal.Dispose()

    use again = WriteAheadLog.Open(tmp.Path, Snapshot.Zero, options)
    Expect.equal (entryList (again.ReadAll())) (entriesFrom 1UL 4UL) ""
    again.Save(state 5UL, [ entry 5UL ])

// ---------------------------------------------------------------------------------------------
// Closed

let ``Closed: every call after Dispose, and Dispose twice is fine`` () =
    let fs, options = memoryOptions 65536L
    let wal = WriteAheadLog.Create(dir, mem "meta", options)
    wal.Save(state 2UL, entriesFrom 1UL 2UL)
    wal.Dispose()
    let after = fs.ReadAllBytes firstPath
    assertKind WalErrorKind.Closed (fun () -> wal.Save(state 3UL, [ entry 3UL ]))
    assertKind WalErrorKind.Closed (fun () -> wal.Save(HardState.Empty, List.empty<Entry>))
    assertKind WalErrorKind.Closed (fun () -> wal.ReadAll() |> ignore)
    assertKind WalErrorKind.Closed (fun () -> wal.SaveSnapshot(Snapshot(2UL, 1UL)))
    assertKind WalErrorKind.Closed (fun () -> wal.Sync())
    assertKind WalErrorKind.Closed (fun () -> wal.ReleaseLockTo 1UL)
    Expect.equal (errorKind (fun () -> wal.Dispose())) None ""
    Expect.equal (fs.ReadAllBytes firstPath) after ""
    Expect.equal (readWrite options Snapshot.Zero |> entryList) (entriesFrom 1UL 2UL) ""

let ``Closed: ReadAll after disposing a log opened but not yet read`` () =
    let _, options = logWith 65536L 2UL
    let wal = WriteAheadLog.Open(dir, Snapshot.Zero, options)
    wal.Dispose()
    assertKind WalErrorKind.Closed (fun () -> wal.ReadAll() |> ignore)
    assertKind WalErrorKind.Closed (fun () -> wal.Save(state 3UL, [ entry 3UL ]))
    let reader = WriteAheadLog.OpenForRead(dir, Snapshot.Zero, options)
    reader.Dispose()
    reader.Dispose()
    assertKind WalErrorKind.Closed (fun () -> reader.ReadAll() |> ignore)
    // Disposing released the lock.
    Expect.equal (readWrite options Snapshot.Zero |> entryList) (entriesFrom 1UL 2UL) ""

// ---------------------------------------------------------------------------------------------
// InvalidArgument

let ``InvalidArgument: an empty, blank, root or NUL path; nothing is created`` (path: string) =
    let fs, options = memoryOptions 65536L
    assertKind WalErrorKind.InvalidArgument (fun () -> WriteAheadLog.Create(path, mem "meta", options).Dispose())
    assertKind WalErrorKind.InvalidArgument (fun () -> WriteAheadLog.Open(path, Snapshot.Zero, options).Dispose())

    assertKind WalErrorKind.InvalidArgument (fun () ->
        WriteAheadLog.OpenForRead(path, Snapshot.Zero, options).Dispose())

    assertKind WalErrorKind.InvalidArgument (fun () -> WalDirectory.Repair(path, options) |> ignore)
    assertKind WalErrorKind.InvalidArgument (fun () -> WalDirectory.Verify(path, Snapshot.Zero, options) |> ignore)
    assertKind WalErrorKind.InvalidArgument (fun () -> WalDirectory.ValidSnapshotEntries(path, options) |> ignore)
    Expect.isFalse (WalDirectory.Exists(path, options)) ""
    Expect.equal (fs.List "/") List.empty<string> ""

let private badOptions (fs: SimulatedFileSystem) : (string * WalOptions) list =
    let make segmentSize maxRecord =
        WalOptions(
            FileSystem = fs,
            SegmentSizeBytes = segmentSize,
            MaxRecordBytes = maxRecord,
            PrepareSegmentsInBackground = false
        )

    [
        ("SegmentSizeBytes = 10", make 10L WalOptions.DefaultMaxRecordBytes)
        ("SegmentSizeBytes = 0", make 0L WalOptions.DefaultMaxRecordBytes)
        ("MaxRecordBytes = 0", make 65536L 0)
        ("MaxRecordBytes = -1", make 65536L -1)
        ("MaxRecordBytes over what etcd reads", make 65536L (WalOptions.DefaultMaxRecordBytes + 1))
        ("FileSystem = null", WalOptions(FileSystem = null))
        ("SplitOpenBytes = -1",
         WalOptions(
             FileSystem = fs,
             SegmentSizeBytes = 65536L,
             PrepareSegmentsInBackground = false,
             SplitOpenBytes = -1L
         ))
        ("ZeroAheadBytes = -1",
         WalOptions(
             FileSystem = fs,
             SegmentSizeBytes = 65536L,
             PrepareSegmentsInBackground = false,
             ZeroAheadBytes = -1
         ))
    ]

let ``InvalidArgument: Create with bad options creates nothing`` () =
    let fs = SimulatedFileSystem()

    for what, options in badOptions fs do
        Expect.equal
            (errorKind (fun () -> WriteAheadLog.Create(dir, mem "meta", options).Dispose()))
            (Some WalErrorKind.InvalidArgument)
            what

        Expect.equal (fs.List "/") List.empty<string> what

let ``InvalidArgument: Open, OpenForRead, RaftLog.Open, Repair and Verify with bad options leave the log alone`` () =
    let fs, good = logWith 65536L 3UL
    let before = fs.ReadAllBytes firstPath

    for what, options in badOptions fs do
        let check (action: unit -> unit) =
            Expect.equal (errorKind action) (Some WalErrorKind.InvalidArgument) what

        check (fun () -> WriteAheadLog.Open(dir, Snapshot.Zero, options).Dispose())
        check (fun () -> WriteAheadLog.OpenForRead(dir, Snapshot.Zero, options).Dispose())
        check (fun () -> RaftLog.Open(dir, Snapshot.Zero, options).Dispose())
        check (fun () -> WalDirectory.Repair(dir, options) |> ignore)
        check (fun () -> WalDirectory.Verify(dir, Snapshot.Zero, options) |> ignore)
        check (fun () -> WalDirectory.ValidSnapshotEntries(dir, options) |> ignore)
        check (fun () -> WalDirectory.Survey(dir, Snapshot.Zero, options) |> ignore)
        check (fun () -> WalDirectory.Scan(dir, options) |> Seq.length |> ignore)

    Expect.equal (fs.ReadAllBytes firstPath) before ""
    Expect.equal (fs.List dir) [ firstSegment ] ""
    // No lock was left behind.
    Expect.equal (readWrite good Snapshot.Zero |> entryList) (entriesFrom 1UL 3UL) ""

let ``The tools read through the options' file system`` () =
    let _, options = logWith 65536L 3UL
    Expect.equal (WalDirectory.Survey(dir, Snapshot.Zero, options).LastIndex) 3UL "Survey"
    Expect.isGreaterThan (WalDirectory.Scan(dir, options) |> Seq.length) 3 "Scan"
    Expect.isGreaterThan (WalDirectory.Scan(dir, Snapshot(2UL, 1UL), options) |> Seq.length) 3 "Scan from a snapshot"

let ``ArgumentNullException: Save with null entries`` () =
    let _, options = memoryOptions 65536L
    use wal = WriteAheadLog.Create(dir, mem "meta", options)
    Expect.throwsT<ArgumentNullException> (fun () -> wal.Save(state 0UL, (null: seq<Entry>))) ""

// ---------------------------------------------------------------------------------------------
// RecordTooLarge

/// The data length that makes a record of exactly `limit` bytes, by `size`.
let private exactly (limit: int) (size: int -> int) =
    let n = Seq.initInfinite id |> Seq.find (fun n -> size n >= limit)
    Expect.equal (size n) limit "a length that fills the limit exactly"
    n

let ``RecordTooLarge: the limit is inclusive, for the metadata and for an entry`` () =
    let limit = 4096
    let fs, _ = memoryOptions 65536L

    let options =
        WalOptions(
            FileSystem = fs,
            SegmentSizeBytes = 65536L,
            MaxRecordBytes = limit,
            PrepareSegmentsInBackground = false
        )

    let metadata =
        exactly limit (fun n -> Wal.Format.RecordCodec.RecordSize(UInt32.MaxValue, n))

    WriteAheadLog.Create("/data/fits", Array.zeroCreate<byte> metadata, options).Dispose()

    assertKind WalErrorKind.RecordTooLarge (fun () ->
        WriteAheadLog.Create("/data/over", Array.zeroCreate<byte>(metadata + 1), options).Dispose())

    let sized (n: int) =
        Entry(1UL, 1UL, ReadOnlyMemory(Array.zeroCreate<byte> n))

    let data =
        exactly limit (fun n ->
            let e = sized n
            Wal.Format.RecordCodec.MaxEntryRecordSize(&e))

    use wal = WriteAheadLog.Create(dir, mem "meta", options)
    assertKind WalErrorKind.RecordTooLarge (fun () -> wal.Save(state 0UL, [ sized (data + 1) ]))
    wal.Save(state 0UL, [ sized data ])
    Expect.equal wal.LastIndex 1UL "the entry at the limit was saved"

let ``Create's text metadata is stored as UTF-8, and null as none`` () =
    let _, options = memoryOptions 65536L

    do
        use wal = WriteAheadLog.Create("/data/text", "node ☃", options)
        ()

    do
        use wal = WriteAheadLog.Create("/data/none", (null: string), options)
        ()

    let metadataOf path =
        use wal = WriteAheadLog.OpenForRead(path, Snapshot.Zero, options)
        wal.ReadAll().Metadata.ToArray()

    Expect.equal (metadataOf "/data/text") (Text.Encoding.UTF8.GetBytes "node ☃") "text"
    Expect.isEmpty (metadataOf "/data/none") "null"

// ---------------------------------------------------------------------------------------------
// InvalidState

let ``InvalidState: writing to a log opened with Open before ReadAll, and ReadAll twice`` () =
    let fs, options = logWith 65536L 2UL
    let before = fs.ReadAllBytes firstPath

    do
        use wal = WriteAheadLog.Open(dir, Snapshot.Zero, options)
        assertKind WalErrorKind.InvalidState (fun () -> wal.Save(state 3UL, [ entry 3UL ]))
        assertKind WalErrorKind.InvalidState (fun () -> wal.SaveSnapshot(Snapshot(2UL, 1UL)))
        assertKind WalErrorKind.InvalidState (fun () -> wal.Sync())
        Expect.equal (fs.ReadAllBytes firstPath) before ""
        Expect.equal (entryList (wal.ReadAll())) (entriesFrom 1UL 2UL) ""
        assertKind WalErrorKind.InvalidState (fun () -> wal.ReadAll() |> ignore)
        // Still appending after the refused second ReadAll.
        wal.Save(state 3UL, [ entry 3UL ])

    Expect.equal (readWrite options Snapshot.Zero |> entryList) (entriesFrom 1UL 3UL) ""

let ``InvalidState: a log opened with OpenForRead cannot be written, before or after ReadAll`` () =
    let fs, options = logWith 65536L 2UL
    let before = fs.ReadAllBytes firstPath
    use wal = WriteAheadLog.OpenForRead(dir, Snapshot.Zero, options)
    assertKind WalErrorKind.InvalidState (fun () -> wal.Save(state 3UL, [ entry 3UL ]))
    assertKind WalErrorKind.InvalidState (fun () -> wal.Sync())
    Expect.equal (entryList (wal.ReadAll())) (entriesFrom 1UL 2UL) ""
    assertKind WalErrorKind.InvalidState (fun () -> wal.Save(state 3UL, [ entry 3UL ]))
    assertKind WalErrorKind.InvalidState (fun () -> wal.SaveSnapshot(Snapshot(2UL, 1UL)))
    assertKind WalErrorKind.InvalidState (fun () -> wal.ReadAll() |> ignore)
    Expect.equal (fs.ReadAllBytes firstPath) before ""

let ``InvalidState: ReadAll on a log made by Create, and Save after a failed ReadAll`` () =
    let fs, options = memoryOptions 65536L

    do
        use wal = WriteAheadLog.Create(dir, mem "meta", options)
        assertKind WalErrorKind.InvalidState (fun () -> wal.ReadAll() |> ignore)
        wal.Save(state 1UL, [ entry 1UL ])
        wal.SaveSnapshot(Snapshot(1UL, 1UL))

    let before = fs.ReadAllBytes firstPath
    use wal = WriteAheadLog.Open(dir, Snapshot(1UL, 2UL), options)
    assertKind WalErrorKind.SnapshotMismatch (fun () -> wal.ReadAll() |> ignore)
    assertKind WalErrorKind.InvalidState (fun () -> wal.Save(state 2UL, [ entry 2UL ]))
    assertKind WalErrorKind.InvalidState (fun () -> wal.ReadAll() |> ignore)
    Expect.equal (fs.ReadAllBytes firstPath) before ""

/// This file's tests.
let tests =
    testList
        "UsageErrorTests"
        [
            testCase
                "AlreadyExists: Create on a directory that holds a file"
                ``AlreadyExists: Create on a directory that holds a file``
            testCase
                "AlreadyExists: Create on an existing log leaves it as it was"
                ``AlreadyExists: Create on an existing log leaves it as it was``
            testCase "AlreadyExists: Create on a path that is a file" ``AlreadyExists: Create on a path that is a file``
            testCase "Create on an existing empty directory succeeds" ``Create on an existing empty directory succeeds``
            testCase
                "Locked: a second writer cannot open a log a writer holds; a reader can"
                ``Locked: a second writer cannot open a log a writer holds; a reader can``
            testCase
                "Closed: every call after Dispose, and Dispose twice is fine"
                ``Closed: every call after Dispose, and Dispose twice is fine``
            testCase
                "Closed: ReadAll after disposing a log opened but not yet read"
                ``Closed: ReadAll after disposing a log opened but not yet read``
            testCase "InvalidArgument: an empty, blank, root or NUL path; nothing is created(\"\")" (fun () ->
                ``InvalidArgument: an empty, blank, root or NUL path; nothing is created`` (""))
            testCase "InvalidArgument: an empty, blank, root or NUL path; nothing is created(\"   \")" (fun () ->
                ``InvalidArgument: an empty, blank, root or NUL path; nothing is created`` ("   "))
            testCase "InvalidArgument: an empty, blank, root or NUL path; nothing is created(\"\\t\\n\")" (fun () ->
                ``InvalidArgument: an empty, blank, root or NUL path; nothing is created`` ("\t\n"))
            testCase "InvalidArgument: an empty, blank, root or NUL path; nothing is created(\"/\")" (fun () ->
                ``InvalidArgument: an empty, blank, root or NUL path; nothing is created`` ("/"))
            testCase
                "InvalidArgument: an empty, blank, root or NUL path; nothing is created(\"/data/w\\000al\")"
                (fun () -> ``InvalidArgument: an empty, blank, root or NUL path; nothing is created`` ("/data/w\000al"))
            testCase
                "InvalidArgument: Create with bad options creates nothing"
                ``InvalidArgument: Create with bad options creates nothing``
            testCase
                "InvalidArgument: Open, OpenForRead, RaftLog.Open, Repair and Verify with bad options leave the log alone"
                ``InvalidArgument: Open, OpenForRead, RaftLog.Open, Repair and Verify with bad options leave the log alone``
            testCase
                "The tools read through the options' file system"
                ``The tools read through the options' file system``
            testCase "ArgumentNullException: Save with null entries" ``ArgumentNullException: Save with null entries``
            testCase
                "RecordTooLarge: the limit is inclusive, for the metadata and for an entry"
                ``RecordTooLarge: the limit is inclusive, for the metadata and for an entry``
            testCase
                "Create's text metadata is stored as UTF-8, and null as none"
                ``Create's text metadata is stored as UTF-8, and null as none``
            testCase
                "InvalidState: writing to a log opened with Open before ReadAll, and ReadAll twice"
                ``InvalidState: writing to a log opened with Open before ReadAll, and ReadAll twice``
            testCase
                "InvalidState: a log opened with OpenForRead cannot be written, before or after ReadAll"
                ``InvalidState: a log opened with OpenForRead cannot be written, before or after ReadAll``
            testCase
                "InvalidState: ReadAll on a log made by Create, and Save after a failed ReadAll"
                ``InvalidState: ReadAll on a log made by Create, and Save after a failed ReadAll``
        ]
