/// The errors ReadAll, Open, OpenForRead and Verify report for a log they cannot read as written:
/// MetadataConflict, FileNotFound, CrcMismatch, CorruptRecord, SnapshotMismatch, SnapshotNotFound
/// and SliceOutOfRange, each with the exact kind asserted and nothing on disk changed.
module Wal.Properties.ReadErrorTests

open Expecto
open System
open Wal
open Wal.Storage
open Wal.Simulation
open Wal.Properties.Support
open Wal.Properties.LogFixtures

// ---------------------------------------------------------------------------------------------
// MetadataConflict

let ``hand-built segments with equal metadata read back (control for the hand-built cases)`` () =
    let _, options = oneSegment (fun e -> encodeRaw e RecordType.Metadata (bytes "a"))
    let r = readWrite options Snapshot.Zero
    Expect.equal (entryList r) [ entry 1UL ] ""
    Expect.equal (r.Metadata.ToArray()) (bytes "a") ""

    let _, options = twoSegments "a"
    let r = readWrite options Snapshot.Zero
    Expect.equal (entryList r) [ entry 1UL; entry 2UL ] ""
    Expect.equal (WalDirectory.Verify(dir, Snapshot.Zero, options)) (state 1UL) ""

let ``empty metadata is not compared with later metadata, as Go reads it as nil`` () =
    // etcd keeps the metadata as nil after an empty record, and compares only non-nil metadata.
    let fs, options = memoryOptions 65536L

    handBuild fs firstSegment 0u (fun e ->
        firstHeader "" e
        encodeEntry e (entry 1UL)
        encodeRaw e RecordType.Metadata (bytes "b"))
    |> ignore

    let r = readWrite options Snapshot.Zero
    Expect.equal (r.Metadata.ToArray()) (bytes "b") ""
    // The other way round it is a conflict: "b" then empty.
    let fs, options = memoryOptions 65536L

    handBuild fs firstSegment 0u (fun e ->
        firstHeader "b" e
        encodeRaw e RecordType.Metadata [||])
    |> ignore

    assertKind WalErrorKind.MetadataConflict (fun () -> readWrite options Snapshot.Zero |> ignore)

let ``MetadataConflict: a second metadata record in the same segment differs`` () =
    let _, options = oneSegment (fun e -> encodeRaw e RecordType.Metadata (bytes "b"))
    use wal = WriteAheadLog.Open(dir, Snapshot.Zero, options)
    assertKind WalErrorKind.MetadataConflict (fun () -> wal.ReadAll() |> ignore)

    assertKind WalErrorKind.MetadataConflict (fun () -> readOnly options Snapshot.Zero |> ignore)

    assertKind WalErrorKind.MetadataConflict (fun () -> WalDirectory.Verify(dir, Snapshot.Zero, options) |> ignore)

let ``MetadataConflict: a later segment, with a valid CRC chain, holds other metadata`` () =
    let fs, options = twoSegments "b"
    let before = fs.ReadAllBytes(at secondSegment)
    assertKind WalErrorKind.MetadataConflict (fun () -> readWrite options Snapshot.Zero |> ignore)

    assertKind WalErrorKind.MetadataConflict (fun () -> WalDirectory.Verify(dir, Snapshot.Zero, options) |> ignore)

    // A failed ReadAll in write mode changes nothing on disk.
    Expect.equal (fs.ReadAllBytes(at secondSegment)) before ""

// ---------------------------------------------------------------------------------------------
// FileNotFound

let private assertNotFoundEverywhere (options: WalOptions) (snapshot: Snapshot) =
    assertKind WalErrorKind.FileNotFound (fun () -> WriteAheadLog.Open(dir, snapshot, options).Dispose())
    assertKind WalErrorKind.FileNotFound (fun () -> WriteAheadLog.OpenForRead(dir, snapshot, options).Dispose())
    assertKind WalErrorKind.FileNotFound (fun () -> WalDirectory.Verify(dir, snapshot, options) |> ignore)

let ``FileNotFound: a directory that does not exist`` () =
    let fs, options = memoryOptions 65536L
    assertNotFoundEverywhere options Snapshot.Zero
    assertKind WalErrorKind.FileNotFound (fun () -> WalDirectory.Repair(dir, options) |> ignore)
    assertKind WalErrorKind.FileNotFound (fun () -> WalDirectory.ValidSnapshotEntries(dir, options) |> ignore)
    Expect.equal (fs.List "/") List.empty<string> ""

let ``FileNotFound: an empty directory`` () =
    let fs, options = memoryOptions 65536L
    (fs :> IFileSystem).CreateDirectory dir
    assertNotFoundEverywhere options Snapshot.Zero
    assertKind WalErrorKind.FileNotFound (fun () -> WalDirectory.Repair(dir, options) |> ignore)
    Expect.equal (fs.List dir) List.empty<string> ""

let ``FileNotFound: a directory holding only files that are not segments`` () =
    let fs, options = memoryOptions 65536L
    (fs :> IFileSystem).CreateDirectory dir
    let foreign = [ "0.tmp"; firstSegment + ".broken"; "1-2.wal"; "notes.txt" ]

    for name in foreign do
        fs.WriteAllBytes(at name, bytes "not a segment")

    assertNotFoundEverywhere options Snapshot.Zero
    assertKind WalErrorKind.FileNotFound (fun () -> WalDirectory.Repair(dir, options) |> ignore)
    Expect.equal (fs.List dir) (List.sortWith (fun a b -> String.CompareOrdinal(a, b)) foreign) ""

let ``FileNotFound: the snapshot index is below the first segment's index`` () =
    let fs, options = logWith 65536L 5UL
    (fs :> IFileSystem).Rename(firstPath, at "0000000000000000-0000000000000005.wal")
    assertNotFoundEverywhere options Snapshot.Zero
    assertNotFoundEverywhere options (Snapshot(4UL, 1UL))
    // At the segment's own index the log opens (and has no snapshot record there).
    let ex = expectWalError (fun () -> readOnly options (Snapshot(5UL, 1UL)) |> ignore)
    Expect.equal ex.Kind WalErrorKind.SnapshotNotFound ""

let ``FileNotFound: a segment is missing from the middle of the sequence`` () =
    let fs, options = logWith 512L 40UL
    let segments = segmentsOf fs
    Expect.isGreaterThanOrEqual segments.Length 3 ""
    (fs :> IFileSystem).RemoveFile(at segments[1])
    assertNotFoundEverywhere options Snapshot.Zero
    // ValidSnapshotEntries reads every segment, as etcd's does; the gap breaks the CRC chain.
    assertKind WalErrorKind.CrcMismatch (fun () -> WalDirectory.ValidSnapshotEntries(dir, options) |> ignore)

let ``FileNotFound: the segment before the last is missing, and the message names the two beside the gap`` () =
    let fs, options = logWith 512L 40UL
    let segments = segmentsOf fs
    Expect.isGreaterThanOrEqual segments.Length 3 ""
    (fs :> IFileSystem).RemoveFile(at segments[segments.Length - 2])
    let ex = expectWalError (fun () -> readOnly options Snapshot.Zero |> ignore)
    Expect.equal ex.Kind WalErrorKind.FileNotFound ""
    Expect.stringContains ex.Message segments[segments.Length - 3] "the segment before the gap"
    Expect.stringContains ex.Message segments[segments.Length - 1] "the segment after the gap"

// ---------------------------------------------------------------------------------------------
// CrcMismatch

let ``CrcMismatch: one changed byte of an entry in a segment that is not the last`` () =
    let fs, options = logWith 512L 40UL
    let segments = segmentsOf fs
    Expect.isGreaterThanOrEqual segments.Length 2 ""
    let path = at segments[0]
    flipByte fs path (find (bytes "entry-0002-payload") (fs.ReadAllBytes path) + 6)
    let damaged = segments |> List.map (fun s -> fs.ReadAllBytes(at s))

    assertKind WalErrorKind.CrcMismatch (fun () -> readWrite options Snapshot.Zero |> ignore)
    assertKind WalErrorKind.CrcMismatch (fun () -> readOnly options Snapshot.Zero |> ignore)
    assertKind WalErrorKind.CrcMismatch (fun () -> WalDirectory.Verify(dir, Snapshot.Zero, options) |> ignore)
    assertKind WalErrorKind.CrcMismatch (fun () -> WalDirectory.ValidSnapshotEntries(dir, options) |> ignore)

    // The error names the damaged segment, not the last one: an operator goes to that file.
    let message =
        try
            readOnly options Snapshot.Zero |> ignore
            ""
        with :? WalException as e ->
            e.Message

    Expect.stringContains message segments[0] "the message names the damaged segment"
    Expect.isFalse (message.Contains(List.last segments)) $"the message names the last segment: {message}"

    // Repair, as etcd's, looks only at the last segment, which is sound: it must not cut or hide
    // anything, and the corruption is still reported afterwards.
    Expect.equal (WalDirectory.Repair(dir, options)) RepairOutcome.NothingToRepair ""
    Expect.equal (segmentsOf fs |> List.map (fun s -> fs.ReadAllBytes(at s))) damaged ""
    Expect.isFalse (fs.List dir |> List.exists (fun n -> n.EndsWith ".broken")) ""
    assertKind WalErrorKind.CrcMismatch (fun () -> readWrite options Snapshot.Zero |> ignore)

let ``CorruptRecord: a segment that is not the last, cut off inside a record, is damage and not a torn write`` () =
    let fs, options = logWith 512L 40UL
    let segments = segmentsOf fs
    Expect.isGreaterThanOrEqual segments.Length 3 ""
    let path = at segments[0]
    let file = fs.ReadAllBytes path
    let frames = framesOf file
    let victim = frames[frames.Length - 3]
    // A cut truncates and syncs a segment before the next exists, so no crash leaves this.
    fs.WriteAllBytes(path, file[.. victim.Offset + victim.Size / 2 - 1])

    assertKind WalErrorKind.CorruptRecord (fun () -> readWrite options Snapshot.Zero |> ignore)
    assertKind WalErrorKind.CorruptRecord (fun () -> readOnly options Snapshot.Zero |> ignore)
    assertKind WalErrorKind.CorruptRecord (fun () -> WalDirectory.Verify(dir, Snapshot.Zero, options) |> ignore)
    // Repair looks at the last segment only, which is whole: there is nothing for it to cut.
    Expect.equal (WalDirectory.Repair(dir, options)) RepairOutcome.NothingToRepair ""
    assertKind WalErrorKind.CorruptRecord (fun () -> readWrite options Snapshot.Zero |> ignore)

let ``CrcMismatch: one changed byte of an entry in the last segment is corruption, which Repair refuses`` () =
    let fs, options = logWith 65536L 5UL
    let file = fs.ReadAllBytes firstPath
    let offset = find (bytes "entry-0002-payload") file + 6
    // Not a torn write: the damaged frame lies in one sector, with no zeroed sector.
    let frame =
        framesOf file
        |> List.find (fun f -> f.Offset < offset && offset < f.Offset + f.Size)

    Expect.equal (frame.Offset / 512) ((frame.Offset + frame.Size - 1) / 512) ""
    flipByte fs firstPath offset
    let damaged = fs.ReadAllBytes firstPath

    assertKind WalErrorKind.CrcMismatch (fun () -> readWrite options Snapshot.Zero |> ignore)
    assertKind WalErrorKind.CrcMismatch (fun () -> readOnly options Snapshot.Zero |> ignore)
    assertKind WalErrorKind.CrcMismatch (fun () -> WalDirectory.Verify(dir, Snapshot.Zero, options) |> ignore)
    assertKind WalErrorKind.CrcMismatch (fun () -> WalDirectory.Repair(dir, options) |> ignore)
    Expect.equal (fs.ReadAllBytes firstPath) damaged ""
    Expect.equal (fs.List dir) [ firstSegment ] ""

// ---------------------------------------------------------------------------------------------
// CorruptRecord

let ``CorruptRecord: a record of unknown type 9, with a valid CRC`` () =
    let _, options =
        oneSegment (fun e -> encodeRaw e (LanguagePrimitives.EnumOfValue<int64, RecordType> 9L) (bytes "x"))

    assertKind WalErrorKind.CorruptRecord (fun () -> readWrite options Snapshot.Zero |> ignore)
    assertKind WalErrorKind.CorruptRecord (fun () -> readOnly options Snapshot.Zero |> ignore)
    assertKind WalErrorKind.CorruptRecord (fun () -> WalDirectory.Verify(dir, Snapshot.Zero, options) |> ignore)

let ``CorruptRecord: an entry record whose data is not a raftpb.Entry, with a valid CRC`` () =
    let _, options =
        oneSegment (fun e -> encodeRaw e RecordType.Entry (Array.create 12 0xFFuy))

    assertKind WalErrorKind.CorruptRecord (fun () -> readWrite options Snapshot.Zero |> ignore)
    assertKind WalErrorKind.CorruptRecord (fun () -> readOnly options Snapshot.Zero |> ignore)

/// Overwrites the record bytes (not the length word) of entry 2's frame with 0xFF.
let private garbleEntry2 (fs: SimulatedFileSystem) (path: string) =
    let file = fs.ReadAllBytes path
    let offset = find (bytes "entry-0002-payload") file

    let frame =
        framesOf file
        |> List.find (fun f -> f.Offset < offset && offset < f.Offset + f.Size)

    Expect.equal frame.Type 2 ""
    Array.fill file (frame.Offset + 8) (frame.Size - 8) 0xFFuy
    fs.WriteAllBytes(path, file)

let ``CorruptRecord: record bytes that are not a protobuf, in a segment that is not the last`` () =
    let fs, options = logWith 512L 40UL
    let segments = segmentsOf fs
    Expect.isGreaterThanOrEqual segments.Length 2 ""
    garbleEntry2 fs (at segments[0])
    assertKind WalErrorKind.CorruptRecord (fun () -> readWrite options Snapshot.Zero |> ignore)
    assertKind WalErrorKind.CorruptRecord (fun () -> readOnly options Snapshot.Zero |> ignore)
    assertKind WalErrorKind.CorruptRecord (fun () -> WalDirectory.Verify(dir, Snapshot.Zero, options) |> ignore)

let ``CorruptRecord: record bytes that are not a protobuf in the last segment, which Repair refuses`` () =
    let fs, options = logWith 65536L 5UL
    garbleEntry2 fs firstPath
    let damaged = fs.ReadAllBytes firstPath
    assertKind WalErrorKind.CorruptRecord (fun () -> readWrite options Snapshot.Zero |> ignore)
    assertKind WalErrorKind.CorruptRecord (fun () -> readOnly options Snapshot.Zero |> ignore)
    assertKind WalErrorKind.CorruptRecord (fun () -> WalDirectory.Repair(dir, options) |> ignore)
    Expect.equal (fs.ReadAllBytes firstPath) damaged ""
    Expect.equal (fs.List dir) [ firstSegment ] ""

// ---------------------------------------------------------------------------------------------
// SnapshotMismatch, SnapshotNotFound

let private logWithSnapshot () =
    let fs, options = memoryOptions 65536L

    do
        use wal = WriteAheadLog.Create(dir, mem "meta", options)
        wal.Save(HardState(2UL, 1UL, 5UL), [ for i in 1UL .. 5UL -> Entry(2UL, i, mem $"e{i}") ])
        wal.SaveSnapshot(Snapshot(5UL, 2UL))
        wal.Save(HardState(2UL, 1UL, 6UL), [ Entry(2UL, 6UL, mem "e6") ])

    fs, options

let ``SnapshotMismatch: the snapshot's index is in the log with another term`` () =
    let fs, options = logWithSnapshot ()
    let before = fs.ReadAllBytes firstPath
    assertKind WalErrorKind.SnapshotMismatch (fun () -> readWrite options (Snapshot(5UL, 3UL)) |> ignore)
    assertKind WalErrorKind.SnapshotMismatch (fun () -> readOnly options (Snapshot(5UL, 3UL)) |> ignore)

    assertKind WalErrorKind.SnapshotMismatch (fun () -> WalDirectory.Verify(dir, Snapshot(5UL, 3UL), options) |> ignore)

    Expect.equal (fs.ReadAllBytes firstPath) before ""
    // With the right term the log opens there.
    let r = readWrite options (Snapshot(5UL, 2UL))
    Expect.equal (entryList r) [ Entry(2UL, 6UL, mem "e6") ] ""
    Expect.equal r.State (HardState(2UL, 1UL, 6UL)) ""

let ``SnapshotNotFound: the contents come with the error, and the log still appends`` () =
    let fs, options = logWith 65536L 10UL

    do
        use wal = WriteAheadLog.Open(dir, Snapshot(7UL, 1UL), options)
        let ex = expectWalError (fun () -> wal.ReadAll() |> ignore)
        Expect.equal ex.Kind WalErrorKind.SnapshotNotFound ""
        Expect.isTrue ex.Contents.HasValue ""
        Expect.equal (entryList ex.Contents.Value) (entriesFrom 8UL 10UL) ""
        Expect.equal ex.Contents.Value.State (state 10UL) ""
        Expect.equal (ex.Contents.Value.Metadata.ToArray()) (bytes "meta") ""
        wal.Save(state 11UL, [ entry 11UL ])
        wal.SaveSnapshot(Snapshot(11UL, 1UL))

    let ex = expectWalError (fun () -> readOnly options (Snapshot(7UL, 1UL)) |> ignore)
    Expect.equal ex.Kind WalErrorKind.SnapshotNotFound ""
    Expect.equal (entryList ex.Contents.Value) (entriesFrom 8UL 11UL) ""

    assertKind WalErrorKind.SnapshotNotFound (fun () -> WalDirectory.Verify(dir, Snapshot(7UL, 1UL), options) |> ignore)

    let r = readWrite options Snapshot.Zero
    Expect.equal (entryList r) (entriesFrom 1UL 11UL) ""
    Expect.isEmpty (readWrite options (Snapshot(11UL, 1UL)) |> entryList) ""
    Expect.equal (segmentsOf fs) [ firstSegment ] ""

// ---------------------------------------------------------------------------------------------
// SliceOutOfRange

/// A gap etcd writes and then cannot read: the engine refuses the Save by default (nothing
/// written), and with etcd's rules writes it, after which every read is SliceOutOfRange.
let private saveWithGap (options: WalOptions) (hardState: HardState) (gap: Entry) =
    do
        use wal = WriteAheadLog.Open(dir, Snapshot.Zero, options)
        wal.ReadAll() |> ignore
        assertKind WalErrorKind.InvalidArgument (fun () -> wal.Save(hardState, [ gap ]))

    use wal = WriteAheadLog.Open(dir, Snapshot.Zero, lenient options)
    wal.ReadAll() |> ignore
    wal.Save(hardState, [ gap ])

let ``SliceOutOfRange: an entry index leaves a gap after the entries read`` () =
    let _, options = logWith 65536L 3UL
    saveWithGap options (state 10UL) (entry 10UL)

    assertKind WalErrorKind.SliceOutOfRange (fun () -> readWrite options Snapshot.Zero |> ignore)
    assertKind WalErrorKind.SliceOutOfRange (fun () -> readOnly options Snapshot.Zero |> ignore)

let ``SliceOutOfRange: an index of UInt64.MaxValue is reported, not a crash (CVE-2020-15112)`` () =
    let _, options = logWith 65536L 3UL
    saveWithGap options (state 3UL) (Entry(1UL, UInt64.MaxValue, mem "huge"))

    assertKind WalErrorKind.SliceOutOfRange (fun () -> readWrite options Snapshot.Zero |> ignore)
    assertKind WalErrorKind.SliceOutOfRange (fun () -> readOnly options Snapshot.Zero |> ignore)
    assertKind WalErrorKind.SliceOutOfRange (fun () -> readOnly options (Snapshot(2UL, 1UL)) |> ignore)

let ``SliceOutOfRange: UInt64.MaxValue as the very first entry`` () =
    let fs, options = memoryOptions 65536L

    do
        let _, strict = memoryOptions 65536L
        use wal = WriteAheadLog.Create(dir, mem "meta", strict)

        assertKind WalErrorKind.InvalidArgument (fun () ->
            wal.Save(state 0UL, [ Entry(1UL, UInt64.MaxValue, mem "huge") ]))

    do
        use wal = WriteAheadLog.Create(dir, mem "meta", lenient options)
        wal.Save(state 0UL, [ Entry(1UL, UInt64.MaxValue, mem "huge") ])

    assertKind WalErrorKind.SliceOutOfRange (fun () -> readWrite options Snapshot.Zero |> ignore)
    Expect.equal (segmentsOf fs) [ firstSegment ] ""

/// This file's tests.
let tests =
    testList
        "ReadErrorTests"
        [
            testCase
                "hand-built segments with equal metadata read back (control for the hand-built cases)"
                ``hand-built segments with equal metadata read back (control for the hand-built cases)``
            testCase
                "empty metadata is not compared with later metadata, as Go reads it as nil"
                ``empty metadata is not compared with later metadata, as Go reads it as nil``
            testCase
                "MetadataConflict: a second metadata record in the same segment differs"
                ``MetadataConflict: a second metadata record in the same segment differs``
            testCase
                "MetadataConflict: a later segment, with a valid CRC chain, holds other metadata"
                ``MetadataConflict: a later segment, with a valid CRC chain, holds other metadata``
            testCase "FileNotFound: a directory that does not exist" ``FileNotFound: a directory that does not exist``
            testCase "FileNotFound: an empty directory" ``FileNotFound: an empty directory``
            testCase
                "FileNotFound: the segment before the last is missing, and the message names the two beside the gap"
                ``FileNotFound: the segment before the last is missing, and the message names the two beside the gap``
            testCase
                "FileNotFound: a directory holding only files that are not segments"
                ``FileNotFound: a directory holding only files that are not segments``
            testCase
                "FileNotFound: the snapshot index is below the first segment's index"
                ``FileNotFound: the snapshot index is below the first segment's index``
            testCase
                "FileNotFound: a segment is missing from the middle of the sequence"
                ``FileNotFound: a segment is missing from the middle of the sequence``
            testCase
                "CrcMismatch: one changed byte of an entry in a segment that is not the last"
                ``CrcMismatch: one changed byte of an entry in a segment that is not the last``
            testCase
                "CorruptRecord: a segment that is not the last, cut off inside a record, is damage and not a torn write"
                ``CorruptRecord: a segment that is not the last, cut off inside a record, is damage and not a torn write``
            testCase
                "CrcMismatch: one changed byte of an entry in the last segment is corruption, which Repair refuses"
                ``CrcMismatch: one changed byte of an entry in the last segment is corruption, which Repair refuses``
            testCase
                "CorruptRecord: a record of unknown type 9, with a valid CRC"
                ``CorruptRecord: a record of unknown type 9, with a valid CRC``
            testCase
                "CorruptRecord: an entry record whose data is not a raftpb.Entry, with a valid CRC"
                ``CorruptRecord: an entry record whose data is not a raftpb.Entry, with a valid CRC``
            testCase
                "CorruptRecord: record bytes that are not a protobuf, in a segment that is not the last"
                ``CorruptRecord: record bytes that are not a protobuf, in a segment that is not the last``
            testCase
                "CorruptRecord: record bytes that are not a protobuf in the last segment, which Repair refuses"
                ``CorruptRecord: record bytes that are not a protobuf in the last segment, which Repair refuses``
            testCase
                "SnapshotMismatch: the snapshot's index is in the log with another term"
                ``SnapshotMismatch: the snapshot's index is in the log with another term``
            testCase
                "SnapshotNotFound: the contents come with the error, and the log still appends"
                ``SnapshotNotFound: the contents come with the error, and the log still appends``
            testCase
                "SliceOutOfRange: an entry index leaves a gap after the entries read"
                ``SliceOutOfRange: an entry index leaves a gap after the entries read``
            testCase
                "SliceOutOfRange: an index of UInt64.MaxValue is reported, not a crash (CVE-2020-15112)"
                ``SliceOutOfRange: an index of UInt64.MaxValue is reported, not a crash (CVE-2020-15112)``
            testCase
                "SliceOutOfRange: UInt64.MaxValue as the very first entry"
                ``SliceOutOfRange: UInt64.MaxValue as the very first entry``
        ]
