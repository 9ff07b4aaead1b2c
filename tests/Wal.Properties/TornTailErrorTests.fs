/// A torn tail (UnexpectedEof), which Repair cuts off, and records too large (RecordTooLarge),
/// which Save and Create refuse and Repair does not cut.
module Wal.Properties.TornTailErrorTests

open Expecto
open System
open System.Buffers.Binary
open Wal
open Wal.Simulation
open Wal.Properties.Support
open Wal.Properties.LogFixtures

// ---------------------------------------------------------------------------------------------
// UnexpectedEof and Repair

let private bigEntry (index: uint64) =
    Entry(1UL, index, ReadOnlyMemory(Array.init 1500 (fun j -> byte (j % 250 + 1))))

/// Entries 1..4 (with states), then a 1500-byte entry 5 as the last record; `damage` tears it.
let private tornLog (damage: byte[] -> Framed -> byte[]) =
    let fs, options = memoryOptions 65536L

    do
        use wal = WriteAheadLog.Create(dir, mem "meta", options)

        for i in 1UL .. 4UL do
            wal.Save(state i, [ entry i ])

        wal.Save(HardState.Empty, [ bigEntry 5UL ])

    let file = fs.ReadAllBytes firstPath
    let last = framesOf file |> List.last
    Expect.equal last.Type 2 "the last record is entry 5"
    fs.WriteAllBytes(firstPath, damage file last)
    fs, options

let private truncateInside (file: byte[]) (last: Framed) =
    file[.. last.Offset + last.Size / 2 - 1]

let private zeroTailSector (file: byte[]) (last: Framed) =
    let sector = (last.Offset + last.Size - 1) / 512 * 512
    // The frame starts in an earlier sector, so its length word survives.
    Expect.isGreaterThan sector (last.Offset + 8) ""
    let copy = Array.copy file
    Array.fill copy sector 512 0uy
    copy

let private checkTornAndRepair (fs: SimulatedFileSystem) (options: WalOptions) =
    let damaged = fs.ReadAllBytes firstPath
    assertKind WalErrorKind.UnexpectedEof (fun () -> readWrite options Snapshot.Zero |> ignore)
    // The failed write-mode ReadAll did not touch the file.
    Expect.equal (fs.ReadAllBytes firstPath) damaged ""

    // A reader stops at the torn record; so does Verify.
    let r = readOnly options Snapshot.Zero
    Expect.equal (entryList r) (entriesFrom 1UL 4UL) ""
    Expect.equal r.State (state 4UL) ""
    Expect.equal (WalDirectory.Verify(dir, Snapshot.Zero, options)) (state 4UL) ""

    Expect.equal (WalDirectory.Repair(dir, options)) RepairOutcome.Repaired ""
    Expect.equal (fs.List dir) [ firstSegment; firstSegment + ".broken" ] ""
    Expect.equal (fs.ReadAllBytes(firstPath + ".broken")) damaged ""

    do
        use wal = WriteAheadLog.Open(dir, Snapshot.Zero, options)
        let r = wal.ReadAll()
        Expect.equal (entryList r) (entriesFrom 1UL 4UL) ""
        Expect.equal r.State (state 4UL) ""
        wal.Save(state 5UL, [ entry 5UL ])
        wal.Save(state 6UL, [ entry 6UL ])

    let r = readWrite options Snapshot.Zero
    Expect.equal (entryList r) (entriesFrom 1UL 6UL) ""
    Expect.equal r.State (state 6UL) ""
    Expect.equal (WalDirectory.Repair(dir, options)) RepairOutcome.NothingToRepair ""

let ``UnexpectedEof: the last segment ends in the middle of the last record; Repair cuts it off`` () =
    let fs, options = tornLog truncateInside
    checkTornAndRepair fs options

let ``UnexpectedEof: the sector holding the last record's tail is zeroed; Repair cuts it off`` () =
    let fs, options = tornLog zeroTailSector
    checkTornAndRepair fs options

/// Zeroes 512 bytes inside the last record, from the first sector boundary past its length word
/// moved by `shift` bytes: aligned (0), it is a whole sector a crash can leave unwritten.
let private zeroInside (shift: int) (file: byte[]) (last: Framed) =
    let sector = (last.Offset + 8 + 511) / 512 * 512 + shift
    // The zeros lie wholly inside the record, with written bytes on both sides.
    Expect.isLessThan (sector + 512) (last.Offset + last.Size - 16) ""
    let copy = Array.copy file
    Array.fill copy sector 512 0uy
    copy

let ``UnexpectedEof: a whole aligned sector zeroed inside the last record is a torn write`` () =
    let fs, options = tornLog (zeroInside 0)
    checkTornAndRepair fs options

let ``CrcMismatch: 512 zeros inside the last record that straddle a sector boundary are damage, not a torn write`` () =
    // etcd's torn-write test looks at sectors of the file, not at runs of zeros: a crash leaves
    // whole sectors unwritten, so zeros across a boundary are damage and Repair leaves them.
    let fs, options = tornLog (zeroInside 16)
    let damaged = fs.ReadAllBytes firstPath
    assertKind WalErrorKind.CrcMismatch (fun () -> readWrite options Snapshot.Zero |> ignore)
    assertKind WalErrorKind.CrcMismatch (fun () -> readOnly options Snapshot.Zero |> ignore)
    assertKind WalErrorKind.CrcMismatch (fun () -> WalDirectory.Repair(dir, options) |> ignore)
    Expect.equal (fs.ReadAllBytes firstPath) damaged ""

/// A log of three entries whose last frame is followed by `word` where the next length word goes.
let private withLengthWord (word: uint64) =
    let fs, options = logWith 65536L 3UL
    let file = fs.ReadAllBytes firstPath
    let last = framesOf file |> List.last
    let ending = last.Offset + last.Size
    BinaryPrimitives.WriteUInt64LittleEndian(Span<byte>(file, ending, 8), word)
    fs.WriteAllBytes(firstPath, file)
    options

let ``UnexpectedEof: a length word claiming more than the file holds is a torn write (CVE-2020-15106)`` (word: uint64) =
    let options = withLengthWord word
    let allocated = GC.GetAllocatedBytesForCurrentThread()
    assertKind WalErrorKind.UnexpectedEof (fun () -> readWrite options Snapshot.Zero |> ignore)
    let r = readOnly options Snapshot.Zero
    // Both reads together allocate what a 64 KiB segment can hold, not the megabytes the word claims.
    Expect.isLessThan (GC.GetAllocatedBytesForCurrentThread() - allocated) (1024L * 1024L) ""
    Expect.equal (entryList r) (entriesFrom 1UL 3UL) ""

    Expect.equal (WalDirectory.Repair(dir, options)) RepairOutcome.Repaired ""
    Expect.equal (readWrite options Snapshot.Zero |> entryList) (entriesFrom 1UL 3UL) ""

let ``UnexpectedEof: a length word past the end of a segment is refused before the frame is read`` () =
    // Two 1 MiB entries end 2 MiB into an 8 MiB segment; the next length word claims 7 MiB, under
    // etcd's 10 MiB limit and past the 6 MiB the file holds after it. The check measures what is
    // left from where the frame starts, so the reader refuses the word without a 7 MiB buffer.
    let fs, options = memoryOptions (8L * 1024L * 1024L)

    let big (index: uint64) =
        Entry(1UL, index, ReadOnlyMemory(Array.create (1024 * 1024) (byte index)))

    do
        use wal = WriteAheadLog.Create(dir, mem "meta", options)
        wal.Save(state 2UL, [ big 1UL; big 2UL ])

    let file = fs.ReadAllBytes firstPath
    let last = framesOf file |> List.last
    let ending = last.Offset + last.Size
    Expect.isGreaterThan (file.Length - ending) (5 * 1024 * 1024) "the segment keeps its preallocated size"
    BinaryPrimitives.WriteUInt64LittleEndian(Span<byte>(file, ending, 8), 7UL * 1024UL * 1024UL)
    fs.WriteAllBytes(firstPath, file)

    let allocated = GC.GetAllocatedBytesForCurrentThread()
    Expect.equal (WalDirectory.Verify(dir, Snapshot.Zero, options)) (state 2UL) "Verify stops at the torn word"
    // The 1 MiB records need a buffer of their size; a 7 MiB one would be the word's claim.
    Expect.isLessThan (GC.GetAllocatedBytesForCurrentThread() - allocated) (4L * 1024L * 1024L) ""
    assertKind WalErrorKind.UnexpectedEof (fun () -> readWrite options Snapshot.Zero |> ignore)

let ``RecordTooLarge: a length word claiming 10 MiB or more is refused, read-only or not, and not repaired``
    (word: uint64)
    =
    let options = withLengthWord word
    let allocated = GC.GetAllocatedBytesForCurrentThread()
    assertKind WalErrorKind.RecordTooLarge (fun () -> readWrite options Snapshot.Zero |> ignore)
    assertKind WalErrorKind.RecordTooLarge (fun () -> readOnly options Snapshot.Zero |> ignore)
    Expect.isLessThan (GC.GetAllocatedBytesForCurrentThread() - allocated) (16L * 1024L * 1024L) ""
    // etcd 3.4's Repair gives up on ErrMaxWALEntrySizeLimitExceeded: it is not a torn write.
    assertKind WalErrorKind.RecordTooLarge (fun () -> WalDirectory.Repair(dir, options) |> ignore)

// ---------------------------------------------------------------------------------------------
// RecordTooLarge

let private limitedOptions () =
    let fs = SimulatedFileSystem()

    fs,
    WalOptions(FileSystem = fs, SegmentSizeBytes = 65536L, MaxRecordBytes = 1024, PrepareSegmentsInBackground = false)

let ``RecordTooLarge: an entry over MaxRecordBytes is refused and nothing of its Save is written`` () =
    let fs, options = limitedOptions ()
    let tooBig = Entry(1UL, 4UL, ReadOnlyMemory(Array.create 2000 7uy))

    do
        use wal = WriteAheadLog.Create(dir, mem "meta", options)
        wal.Save(state 2UL, entriesFrom 1UL 2UL)
        let before = fs.ReadAllBytes firstPath
        assertKind WalErrorKind.RecordTooLarge (fun () -> wal.Save(state 2UL, [ tooBig ]))
        // The entries before the big one in the same Save are not written either.
        assertKind WalErrorKind.RecordTooLarge (fun () -> wal.Save(state 4UL, [ entry 3UL; tooBig ]))
        wal.Sync()
        Expect.equal (fs.ReadAllBytes firstPath) before ""
        // The refusal does not fail the log.
        wal.Save(state 3UL, [ entry 3UL ])

    let r = readWrite options Snapshot.Zero
    Expect.equal (entryList r) (entriesFrom 1UL 3UL) ""
    Expect.equal r.State (state 3UL) ""

let ``RecordTooLarge: Create with metadata over MaxRecordBytes creates nothing`` () =
    let fs, options = limitedOptions ()

    assertKind WalErrorKind.RecordTooLarge (fun () ->
        WriteAheadLog.Create(dir, ReadOnlyMemory(Array.create 2000 1uy), options).Dispose())

    Expect.equal (fs.List "/") List.empty<string> ""
    Expect.isFalse (WalDirectory.Exists(dir, options)) ""

/// A log of three entries whose segment ends `bytes` into the next length word, as a file cut
/// there leaves it (a writer writes whole frames, so only a torn write ends a file inside one).
let ``UnexpectedEof: a segment that ends inside a length word is a torn write, zero bytes or not`` (bytes: byte[]) =
    let fs, options = logWith 65536L 3UL
    let file = fs.ReadAllBytes firstPath
    let last = framesOf file |> List.last
    let ending = last.Offset + last.Size
    fs.WriteAllBytes(firstPath, Array.append file[.. ending - 1] bytes)
    // etcd reads the word with io.ReadFull: io.ErrUnexpectedEOF, which write mode refuses.
    assertKind WalErrorKind.UnexpectedEof (fun () -> readWrite options Snapshot.Zero |> ignore)
    Expect.equal (readOnly options Snapshot.Zero |> entryList) (entriesFrom 1UL 3UL) "read-only"
    Expect.equal (WalDirectory.Repair(dir, options)) RepairOutcome.Repaired "Repair cuts the partial word"
    Expect.equal (readWrite options Snapshot.Zero |> entryList) (entriesFrom 1UL 3UL) "after Repair"

/// This file's tests.
let tests =
    testList
        "TornTailErrorTests"
        [
            testCase
                "UnexpectedEof: the last segment ends in the middle of the last record; Repair cuts it off"
                ``UnexpectedEof: the last segment ends in the middle of the last record; Repair cuts it off``
            testCase
                "UnexpectedEof: the sector holding the last record's tail is zeroed; Repair cuts it off"
                ``UnexpectedEof: the sector holding the last record's tail is zeroed; Repair cuts it off``
            testCase
                "UnexpectedEof: a whole aligned sector zeroed inside the last record is a torn write"
                ``UnexpectedEof: a whole aligned sector zeroed inside the last record is a torn write``
            testCase
                "CrcMismatch: 512 zeros inside the last record that straddle a sector boundary are damage, not a torn write"
                ``CrcMismatch: 512 zeros inside the last record that straddle a sector boundary are damage, not a torn write``
            testCases
                "UnexpectedEof: a length word claiming more than the file holds is a torn write (CVE-2020-15106)"
                hexWord
                [ 0x0000000000100000UL; 0x80000000009FFFF8UL ]
                ``UnexpectedEof: a length word claiming more than the file holds is a torn write (CVE-2020-15106)``
            testCases
                "UnexpectedEof: a segment that ends inside a length word is a torn write, zero bytes or not"
                (fun (b: byte[]) -> $"%d{b.Length} bytes %A{b}")
                [ [| 0uy; 0uy; 0uy |]; [| 0uy |]; Array.zeroCreate 7; [| 0x20uy; 0uy; 0uy |] ]
                ``UnexpectedEof: a segment that ends inside a length word is a torn write, zero bytes or not``
            testCase
                "UnexpectedEof: a length word past the end of a segment is refused before the frame is read"
                ``UnexpectedEof: a length word past the end of a segment is refused before the frame is read``
            testCases
                "RecordTooLarge: a length word claiming 10 MiB or more is refused, read-only or not, and not repaired"
                hexWord
                [
                    0x0000000000A00000UL
                    0x0080000000000000UL
                    0x00FFFFFFFFFFFFFFUL
                    0x87FFFFFFFFFFFFFFUL
                ]
                ``RecordTooLarge: a length word claiming 10 MiB or more is refused, read-only or not, and not repaired``
            testCase
                "RecordTooLarge: an entry over MaxRecordBytes is refused and nothing of its Save is written"
                ``RecordTooLarge: an entry over MaxRecordBytes is refused and nothing of its Save is written``
            testCase
                "RecordTooLarge: Create with metadata over MaxRecordBytes creates nothing"
                ``RecordTooLarge: Create with metadata over MaxRecordBytes creates nothing``
        ]
