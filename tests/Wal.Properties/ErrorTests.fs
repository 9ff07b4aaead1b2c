/// Every WalErrorKind, reached through the public API, with the exact kind asserted and, where it
/// matters, that nothing acknowledged was lost and nothing refused was written.
module Wal.Properties.ErrorTests

open System
open System.Buffers.Binary
open System.IO
open NUnit.Framework
open Wal
open Wal.Engine
open Wal.Format
open Wal.Storage
open Wal.Properties.MemoryFileSystem
open Wal.Properties.Support

// ---------------------------------------------------------------------------------------------
// Helpers

let private dir = "/data/wal"
let private at (name: string) = dir + "/" + name
let private firstPath = at firstSegment

/// An entry whose payload names its index, so damage can be aimed at one entry's bytes.
let private entry (index: uint64) =
    Entry(1UL, index, mem $"entry-{index:D4}-payload")

let private entriesFrom (first: uint64) (last: uint64) = [ for i in first..last -> entry i ]
let private state (commit: uint64) = HardState(1UL, 1UL, commit)

let private assertKind (expected: WalErrorKind) (action: unit -> unit) =
    Assert.That(errorKind action, Is.EqualTo(Some expected))

let private entryList (r: ReadAllResult) = List.ofSeq r.Entries

let private indexes (r: ReadAllResult) =
    r.Entries |> Seq.map (fun e -> e.Index) |> List.ofSeq

/// The names of the segment files in the log's directory, in order.
let private segmentsOf (fs: MemoryFileSystem) =
    fs.List dir |> List.filter (fun n -> n.EndsWith ".wal")

/// A log at "/data/wal" holding entries 1..count, each saved (and synced) by its own Save.
let private logWith (segmentSize: int64) (count: uint64) =
    let fs, options = memoryOptions segmentSize
    use wal = WriteAheadLog.Create(dir, mem "meta", options)

    for i in 1UL .. count do
        wal.Save(state i, [ entry i ])

    fs, options

/// Open (for writing) at a snapshot and ReadAll.
let private readWrite (options: WalOptions) (snapshot: Snapshot) =
    use wal = WriteAheadLog.Open(dir, snapshot, options)
    wal.ReadAll()

/// OpenForRead at a snapshot and ReadAll.
let private readOnly (options: WalOptions) (snapshot: Snapshot) =
    use wal = WriteAheadLog.OpenForRead(dir, snapshot, options)
    wal.ReadAll()

/// A frame found in a segment's bytes: where it starts, its whole size, and its record type.
type private Framed = { Offset: int; Size: int; Type: int }

/// The whole frames of a segment, up to the first zero length word (a torn frame is not listed).
let private framesOf (file: byte[]) =
    let rec go offset acc =
        if offset + 8 > file.Length then
            List.rev acc
        else
            let word =
                BinaryPrimitives.ReadUInt64LittleEndian(ReadOnlySpan<byte>(file, offset, 8))

            if word = 0UL then
                List.rev acc
            else
                let struct (recordBytes, pad) = Frame.Decode word
                let size = 8 + int recordBytes + pad

                if offset + size > file.Length then
                    List.rev acc
                else
                    // A record starts 08 <type>: field 1, varint.
                    go
                        (offset + size)
                        ({
                            Offset = offset
                            Size = size
                            Type = int file[offset + 9]
                         }
                         :: acc)

    go 0 []

/// Where a byte pattern first occurs.
let private find (pattern: byte[]) (file: byte[]) =
    let i =
        MemoryExtensions.IndexOf(ReadOnlySpan<byte>(file), ReadOnlySpan<byte>(pattern))

    Assert.That(i, Is.GreaterThanOrEqualTo 0, "pattern not found")
    i

/// Changes one byte of a file in the log's directory.
let private flipByte (fs: MemoryFileSystem) (path: string) (offset: int) =
    let file = fs.ReadAllBytes path
    file[offset] <- file[offset] ^^^ 0x20uy
    fs.WriteAllBytes(path, file)

/// Writes a segment by hand with the engine's own encoder, so framing and CRC chain are valid.
/// Returns the chain's value after the last record.
let private handBuild (fs: MemoryFileSystem) (name: string) (previousCrc: uint32) (write: Encoder -> unit) =
    let ifs = fs :> IFileSystem
    ifs.CreateDirectory dir
    use file = ifs.OpenFile(at name, OpenMode.CreateTruncate)
    let encoder = Encoder(PageWriter(file, 0L), previousCrc)
    write encoder
    encoder.Writer.Flush()
    encoder.Crc

let private encodeEntry (e: Encoder) (value: Entry) =
    let value = value
    e.EncodeEntry(&value)

let private encodeState (e: Encoder) (value: HardState) =
    let value = value
    e.EncodeState(&value)

let private encodeSnapshot (value: Snapshot) =
    let value = value
    RecordCodec.EncodeSnapshot(&value)

let private encodeRaw (e: Encoder) (kind: RecordType) (data: byte[]) =
    e.Encode(kind, ReadOnlySpan<byte>(data), ReadOnlySpan<byte>.Empty)

/// Crc and Metadata: what every segment starts with.
let private header (metadata: string) (e: Encoder) =
    e.EncodeCrc()
    encodeRaw e RecordType.Metadata (bytes metadata)

/// What a new log's first segment holds: Crc(0), Metadata, the zero Snapshot.
let private firstHeader (metadata: string) (e: Encoder) =
    header metadata e
    encodeRaw e RecordType.Snapshot (encodeSnapshot Snapshot.Zero)

let private secondSegment = "0000000000000001-0000000000000002.wal"

/// Two hand-built segments, as a cut leaves them: entry 1 in the first, entry 2 in the second,
/// whose metadata record holds secondMetadata.
let private twoSegments (secondMetadata: string) =
    let fs, options = memoryOptions 65536L

    let crc =
        handBuild fs firstSegment 0u (fun e ->
            firstHeader "a" e
            encodeEntry e (entry 1UL))

    handBuild fs secondSegment crc (fun e ->
        header secondMetadata e
        encodeState e (state 1UL)
        encodeEntry e (entry 2UL))
    |> ignore

    fs, options

/// One hand-built segment: the first segment's header, entry 1, then whatever `extra` writes.
let private oneSegment (extra: Encoder -> unit) =
    let fs, options = memoryOptions 65536L

    handBuild fs firstSegment 0u (fun e ->
        firstHeader "a" e
        encodeEntry e (entry 1UL)
        extra e)
    |> ignore

    fs, options

// ---------------------------------------------------------------------------------------------
// MetadataConflict

[<Test>]
let ``hand-built segments with equal metadata read back (control for the hand-built cases)`` () =
    let _, options = oneSegment (fun e -> encodeRaw e RecordType.Metadata (bytes "a"))
    let r = readWrite options Snapshot.Zero
    expectEqual [ entry 1UL ] (entryList r)
    expectEqual (bytes "a") (r.Metadata.ToArray())

    let _, options = twoSegments "a"
    let r = readWrite options Snapshot.Zero
    expectEqual [ entry 1UL; entry 2UL ] (entryList r)
    Assert.That(WalDirectory.Verify(dir, Snapshot.Zero, options), Is.EqualTo(state 1UL))

[<Test>]
let ``empty metadata is not compared with later metadata, as Go reads it as nil`` () =
    // etcd keeps the metadata as nil after an empty record, and compares only non-nil metadata.
    let fs, options = memoryOptions 65536L

    handBuild fs firstSegment 0u (fun e ->
        firstHeader "" e
        encodeEntry e (entry 1UL)
        encodeRaw e RecordType.Metadata (bytes "b"))
    |> ignore

    let r = readWrite options Snapshot.Zero
    expectEqual (bytes "b") (r.Metadata.ToArray())
    // The other way round it is a conflict: "b" then empty.
    let fs, options = memoryOptions 65536L

    handBuild fs firstSegment 0u (fun e ->
        firstHeader "b" e
        encodeRaw e RecordType.Metadata [||])
    |> ignore

    assertKind WalErrorKind.MetadataConflict (fun () -> readWrite options Snapshot.Zero |> ignore)

[<Test>]
let ``MetadataConflict: a second metadata record in the same segment differs`` () =
    let _, options = oneSegment (fun e -> encodeRaw e RecordType.Metadata (bytes "b"))
    use wal = WriteAheadLog.Open(dir, Snapshot.Zero, options)
    assertKind WalErrorKind.MetadataConflict (fun () -> wal.ReadAll() |> ignore)

    assertKind WalErrorKind.MetadataConflict (fun () -> readOnly options Snapshot.Zero |> ignore)

    assertKind WalErrorKind.MetadataConflict (fun () -> WalDirectory.Verify(dir, Snapshot.Zero, options) |> ignore)

[<Test>]
let ``MetadataConflict: a later segment, with a valid CRC chain, holds other metadata`` () =
    let fs, options = twoSegments "b"
    let before = fs.ReadAllBytes(at secondSegment)
    assertKind WalErrorKind.MetadataConflict (fun () -> readWrite options Snapshot.Zero |> ignore)

    assertKind WalErrorKind.MetadataConflict (fun () -> WalDirectory.Verify(dir, Snapshot.Zero, options) |> ignore)

    // A failed ReadAll in write mode changes nothing on disk.
    expectEqual before (fs.ReadAllBytes(at secondSegment))

// ---------------------------------------------------------------------------------------------
// FileNotFound

let private assertNotFoundEverywhere (options: WalOptions) (snapshot: Snapshot) =
    assertKind WalErrorKind.FileNotFound (fun () -> WriteAheadLog.Open(dir, snapshot, options).Dispose())
    assertKind WalErrorKind.FileNotFound (fun () -> WriteAheadLog.OpenForRead(dir, snapshot, options).Dispose())
    assertKind WalErrorKind.FileNotFound (fun () -> WalDirectory.Verify(dir, snapshot, options) |> ignore)

[<Test>]
let ``FileNotFound: a directory that does not exist`` () =
    let fs, options = memoryOptions 65536L
    assertNotFoundEverywhere options Snapshot.Zero
    assertKind WalErrorKind.FileNotFound (fun () -> WalDirectory.Repair(dir, options) |> ignore)
    assertKind WalErrorKind.FileNotFound (fun () -> WalDirectory.ValidSnapshotEntries(dir, options) |> ignore)
    expectEqual List.empty<string> (fs.List "/")

[<Test>]
let ``FileNotFound: an empty directory`` () =
    let fs, options = memoryOptions 65536L
    (fs :> IFileSystem).CreateDirectory dir
    assertNotFoundEverywhere options Snapshot.Zero
    assertKind WalErrorKind.FileNotFound (fun () -> WalDirectory.Repair(dir, options) |> ignore)
    expectEqual List.empty<string> (fs.List dir)

[<Test>]
let ``FileNotFound: a directory holding only files that are not segments`` () =
    let fs, options = memoryOptions 65536L
    (fs :> IFileSystem).CreateDirectory dir
    let foreign = [ "0.tmp"; firstSegment + ".broken"; "1-2.wal"; "notes.txt" ]

    for name in foreign do
        fs.WriteAllBytes(at name, bytes "not a segment")

    assertNotFoundEverywhere options Snapshot.Zero
    assertKind WalErrorKind.FileNotFound (fun () -> WalDirectory.Repair(dir, options) |> ignore)
    expectEqual (List.sortWith (fun a b -> String.CompareOrdinal(a, b)) foreign) (fs.List dir)

[<Test>]
let ``FileNotFound: the snapshot index is below the first segment's index`` () =
    let fs, options = logWith 65536L 5UL
    (fs :> IFileSystem).Rename(firstPath, at "0000000000000000-0000000000000005.wal")
    assertNotFoundEverywhere options Snapshot.Zero
    assertNotFoundEverywhere options (Snapshot(4UL, 1UL))
    // At the segment's own index the log opens (and has no snapshot record there).
    let ex = expectWalError (fun () -> readOnly options (Snapshot(5UL, 1UL)) |> ignore)
    Assert.That(ex.Kind, Is.EqualTo WalErrorKind.SnapshotNotFound)

[<Test>]
let ``FileNotFound: a segment is missing from the middle of the sequence`` () =
    let fs, options = logWith 512L 40UL
    let segments = segmentsOf fs
    Assert.That(segments.Length, Is.GreaterThanOrEqualTo 3)
    (fs :> IFileSystem).RemoveFile(at segments[1])
    assertNotFoundEverywhere options Snapshot.Zero
    // ValidSnapshotEntries reads every segment, as etcd's does; the gap breaks the CRC chain.
    assertKind WalErrorKind.CrcMismatch (fun () -> WalDirectory.ValidSnapshotEntries(dir, options) |> ignore)

// ---------------------------------------------------------------------------------------------
// CrcMismatch

[<Test>]
let ``CrcMismatch: one changed byte of an entry in a segment that is not the last`` () =
    let fs, options = logWith 512L 40UL
    let segments = segmentsOf fs
    Assert.That(segments.Length, Is.GreaterThanOrEqualTo 2)
    let path = at segments[0]
    flipByte fs path (find (bytes "entry-0002-payload") (fs.ReadAllBytes path) + 6)
    let damaged = segments |> List.map (fun s -> fs.ReadAllBytes(at s))

    assertKind WalErrorKind.CrcMismatch (fun () -> readWrite options Snapshot.Zero |> ignore)
    assertKind WalErrorKind.CrcMismatch (fun () -> readOnly options Snapshot.Zero |> ignore)
    assertKind WalErrorKind.CrcMismatch (fun () -> WalDirectory.Verify(dir, Snapshot.Zero, options) |> ignore)
    assertKind WalErrorKind.CrcMismatch (fun () -> WalDirectory.ValidSnapshotEntries(dir, options) |> ignore)

    // Repair, as etcd's, looks only at the last segment, which is sound: it must not cut or hide
    // anything, and the corruption is still reported afterwards.
    Assert.That(WalDirectory.Repair(dir, options), Is.EqualTo RepairOutcome.NothingToRepair)
    expectEqual damaged (segmentsOf fs |> List.map (fun s -> fs.ReadAllBytes(at s)))
    Assert.That(fs.List dir |> List.exists (fun n -> n.EndsWith ".broken"), Is.False)
    assertKind WalErrorKind.CrcMismatch (fun () -> readWrite options Snapshot.Zero |> ignore)

[<Test>]
let ``CorruptRecord: a segment that is not the last, cut off inside a record, is damage and not a torn write`` () =
    let fs, options = logWith 512L 40UL
    let segments = segmentsOf fs
    Assert.That(segments.Length, Is.GreaterThanOrEqualTo 3)
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
    Assert.That(WalDirectory.Repair(dir, options), Is.EqualTo RepairOutcome.NothingToRepair)
    assertKind WalErrorKind.CorruptRecord (fun () -> readWrite options Snapshot.Zero |> ignore)

[<Test>]
let ``CrcMismatch: one changed byte of an entry in the last segment is corruption, which Repair refuses`` () =
    let fs, options = logWith 65536L 5UL
    let file = fs.ReadAllBytes firstPath
    let offset = find (bytes "entry-0002-payload") file + 6
    // Not a torn write: the damaged frame lies in one sector, with no zeroed sector.
    let frame =
        framesOf file
        |> List.find (fun f -> f.Offset < offset && offset < f.Offset + f.Size)

    Assert.That(frame.Offset / 512, Is.EqualTo((frame.Offset + frame.Size - 1) / 512))
    flipByte fs firstPath offset
    let damaged = fs.ReadAllBytes firstPath

    assertKind WalErrorKind.CrcMismatch (fun () -> readWrite options Snapshot.Zero |> ignore)
    assertKind WalErrorKind.CrcMismatch (fun () -> readOnly options Snapshot.Zero |> ignore)
    assertKind WalErrorKind.CrcMismatch (fun () -> WalDirectory.Verify(dir, Snapshot.Zero, options) |> ignore)
    assertKind WalErrorKind.CrcMismatch (fun () -> WalDirectory.Repair(dir, options) |> ignore)
    expectEqual damaged (fs.ReadAllBytes firstPath)
    expectEqual [ firstSegment ] (fs.List dir)

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

[<Test>]
let ``SnapshotMismatch: the snapshot's index is in the log with another term`` () =
    let fs, options = logWithSnapshot ()
    let before = fs.ReadAllBytes firstPath
    assertKind WalErrorKind.SnapshotMismatch (fun () -> readWrite options (Snapshot(5UL, 3UL)) |> ignore)
    assertKind WalErrorKind.SnapshotMismatch (fun () -> readOnly options (Snapshot(5UL, 3UL)) |> ignore)

    assertKind WalErrorKind.SnapshotMismatch (fun () -> WalDirectory.Verify(dir, Snapshot(5UL, 3UL), options) |> ignore)

    expectEqual before (fs.ReadAllBytes firstPath)
    // With the right term the log opens there.
    let r = readWrite options (Snapshot(5UL, 2UL))
    expectEqual [ Entry(2UL, 6UL, mem "e6") ] (entryList r)
    Assert.That(r.State, Is.EqualTo(HardState(2UL, 1UL, 6UL)))

[<Test>]
let ``SnapshotNotFound: the contents come with the error, and the log still appends`` () =
    let fs, options = logWith 65536L 10UL

    do
        use wal = WriteAheadLog.Open(dir, Snapshot(7UL, 1UL), options)
        let ex = expectWalError (fun () -> wal.ReadAll() |> ignore)
        Assert.That(ex.Kind, Is.EqualTo WalErrorKind.SnapshotNotFound)
        Assert.That(ex.Contents.HasValue, Is.True)
        expectEqual (entriesFrom 8UL 10UL) (entryList ex.Contents.Value)
        Assert.That(ex.Contents.Value.State, Is.EqualTo(state 10UL))
        expectEqual (bytes "meta") (ex.Contents.Value.Metadata.ToArray())
        wal.Save(state 11UL, [ entry 11UL ])
        wal.SaveSnapshot(Snapshot(11UL, 1UL))

    let ex = expectWalError (fun () -> readOnly options (Snapshot(7UL, 1UL)) |> ignore)
    Assert.That(ex.Kind, Is.EqualTo WalErrorKind.SnapshotNotFound)
    expectEqual (entriesFrom 8UL 11UL) (entryList ex.Contents.Value)

    assertKind WalErrorKind.SnapshotNotFound (fun () -> WalDirectory.Verify(dir, Snapshot(7UL, 1UL), options) |> ignore)

    let r = readWrite options Snapshot.Zero
    expectEqual (entriesFrom 1UL 11UL) (entryList r)
    Assert.That(readWrite options (Snapshot(11UL, 1UL)) |> entryList, Is.Empty)
    expectEqual [ firstSegment ] (segmentsOf fs)

// ---------------------------------------------------------------------------------------------
// SliceOutOfRange

[<Test>]
let ``SliceOutOfRange: an entry index leaves a gap after the entries read`` () =
    let _, options = logWith 65536L 3UL

    do
        use wal = WriteAheadLog.Open(dir, Snapshot.Zero, options)
        wal.ReadAll() |> ignore
        wal.Save(state 10UL, [ entry 10UL ])

    assertKind WalErrorKind.SliceOutOfRange (fun () -> readWrite options Snapshot.Zero |> ignore)
    assertKind WalErrorKind.SliceOutOfRange (fun () -> readOnly options Snapshot.Zero |> ignore)

[<Test>]
let ``SliceOutOfRange: an index of UInt64.MaxValue is reported, not a crash (CVE-2020-15112)`` () =
    let _, options = logWith 65536L 3UL

    do
        use wal = WriteAheadLog.Open(dir, Snapshot.Zero, options)
        wal.ReadAll() |> ignore
        wal.Save(state 3UL, [ Entry(1UL, UInt64.MaxValue, mem "huge") ])

    assertKind WalErrorKind.SliceOutOfRange (fun () -> readWrite options Snapshot.Zero |> ignore)
    assertKind WalErrorKind.SliceOutOfRange (fun () -> readOnly options Snapshot.Zero |> ignore)
    assertKind WalErrorKind.SliceOutOfRange (fun () -> readOnly options (Snapshot(2UL, 1UL)) |> ignore)

[<Test>]
let ``SliceOutOfRange: UInt64.MaxValue as the very first entry`` () =
    let fs, options = memoryOptions 65536L

    do
        use wal = WriteAheadLog.Create(dir, mem "meta", options)
        wal.Save(state 0UL, [ Entry(1UL, UInt64.MaxValue, mem "huge") ])

    assertKind WalErrorKind.SliceOutOfRange (fun () -> readWrite options Snapshot.Zero |> ignore)
    expectEqual [ firstSegment ] (segmentsOf fs)

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
    Assert.That(last.Type, Is.EqualTo 2, "the last record is entry 5")
    fs.WriteAllBytes(firstPath, damage file last)
    fs, options

let private truncateInside (file: byte[]) (last: Framed) =
    file[.. last.Offset + last.Size / 2 - 1]

let private zeroTailSector (file: byte[]) (last: Framed) =
    let sector = (last.Offset + last.Size - 1) / 512 * 512
    // The frame starts in an earlier sector, so its length word survives.
    Assert.That(sector, Is.GreaterThan(last.Offset + 8))
    let copy = Array.copy file
    Array.fill copy sector 512 0uy
    copy

let private checkTornAndRepair (fs: MemoryFileSystem) (options: WalOptions) =
    let damaged = fs.ReadAllBytes firstPath
    assertKind WalErrorKind.UnexpectedEof (fun () -> readWrite options Snapshot.Zero |> ignore)
    // The failed write-mode ReadAll did not touch the file.
    expectEqual damaged (fs.ReadAllBytes firstPath)

    // A reader stops at the torn record; so does Verify.
    let r = readOnly options Snapshot.Zero
    expectEqual (entriesFrom 1UL 4UL) (entryList r)
    Assert.That(r.State, Is.EqualTo(state 4UL))
    Assert.That(WalDirectory.Verify(dir, Snapshot.Zero, options), Is.EqualTo(state 4UL))

    Assert.That(WalDirectory.Repair(dir, options), Is.EqualTo RepairOutcome.Repaired)
    expectEqual [ firstSegment; firstSegment + ".broken" ] (fs.List dir)
    expectEqual damaged (fs.ReadAllBytes(firstPath + ".broken"))

    do
        use wal = WriteAheadLog.Open(dir, Snapshot.Zero, options)
        let r = wal.ReadAll()
        expectEqual (entriesFrom 1UL 4UL) (entryList r)
        Assert.That(r.State, Is.EqualTo(state 4UL))
        wal.Save(state 5UL, [ entry 5UL ])
        wal.Save(state 6UL, [ entry 6UL ])

    let r = readWrite options Snapshot.Zero
    expectEqual (entriesFrom 1UL 6UL) (entryList r)
    Assert.That(r.State, Is.EqualTo(state 6UL))
    Assert.That(WalDirectory.Repair(dir, options), Is.EqualTo RepairOutcome.NothingToRepair)

[<Test>]
let ``UnexpectedEof: the last segment ends in the middle of the last record; Repair cuts it off`` () =
    let fs, options = tornLog truncateInside
    checkTornAndRepair fs options

[<Test>]
let ``UnexpectedEof: the sector holding the last record's tail is zeroed; Repair cuts it off`` () =
    let fs, options = tornLog zeroTailSector
    checkTornAndRepair fs options

/// A log of three entries whose last frame is followed by `word` where the next length word goes.
let private withLengthWord (word: uint64) =
    let fs, options = logWith 65536L 3UL
    let file = fs.ReadAllBytes firstPath
    let last = framesOf file |> List.last
    let ending = last.Offset + last.Size
    BinaryPrimitives.WriteUInt64LittleEndian(Span<byte>(file, ending, 8), word)
    fs.WriteAllBytes(firstPath, file)
    options

[<TestCase(0x0000000000100000UL)>]
[<TestCase(0x80000000009FFFF8UL)>]
let ``UnexpectedEof: a length word claiming more than the file holds is a torn write (CVE-2020-15106)`` (word: uint64) =
    let options = withLengthWord word
    let allocated = GC.GetAllocatedBytesForCurrentThread()
    assertKind WalErrorKind.UnexpectedEof (fun () -> readWrite options Snapshot.Zero |> ignore)
    let r = readOnly options Snapshot.Zero
    Assert.That(GC.GetAllocatedBytesForCurrentThread() - allocated, Is.LessThan(16L * 1024L * 1024L))
    expectEqual (entriesFrom 1UL 3UL) (entryList r)

    Assert.That(WalDirectory.Repair(dir, options), Is.EqualTo RepairOutcome.Repaired)
    expectEqual (entriesFrom 1UL 3UL) (readWrite options Snapshot.Zero |> entryList)

[<TestCase(0x0000000000A00000UL)>]
[<TestCase(0x0080000000000000UL)>]
[<TestCase(0x00FFFFFFFFFFFFFFUL)>]
[<TestCase(0x87FFFFFFFFFFFFFFUL)>]
let ``RecordTooLarge: a length word claiming 10 MiB or more is refused, read-only or not, and not repaired``
    (word: uint64)
    =
    let options = withLengthWord word
    let allocated = GC.GetAllocatedBytesForCurrentThread()
    assertKind WalErrorKind.RecordTooLarge (fun () -> readWrite options Snapshot.Zero |> ignore)
    assertKind WalErrorKind.RecordTooLarge (fun () -> readOnly options Snapshot.Zero |> ignore)
    Assert.That(GC.GetAllocatedBytesForCurrentThread() - allocated, Is.LessThan(16L * 1024L * 1024L))
    // etcd 3.4's Repair gives up on ErrMaxWALEntrySizeLimitExceeded: it is not a torn write.
    assertKind WalErrorKind.RecordTooLarge (fun () -> WalDirectory.Repair(dir, options) |> ignore)

// ---------------------------------------------------------------------------------------------
// RecordTooLarge

let private limitedOptions () =
    let fs = MemoryFileSystem()

    fs,
    WalOptions(FileSystem = fs, SegmentSizeBytes = 65536L, MaxRecordBytes = 1024, PrepareSegmentsInBackground = false)

[<Test>]
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
        expectEqual before (fs.ReadAllBytes firstPath)
        // The refusal does not fail the log.
        wal.Save(state 3UL, [ entry 3UL ])

    let r = readWrite options Snapshot.Zero
    expectEqual (entriesFrom 1UL 3UL) (entryList r)
    Assert.That(r.State, Is.EqualTo(state 3UL))

[<Test>]
let ``RecordTooLarge: Create with metadata over MaxRecordBytes creates nothing`` () =
    let fs, options = limitedOptions ()

    assertKind WalErrorKind.RecordTooLarge (fun () ->
        WriteAheadLog.Create(dir, ReadOnlyMemory(Array.create 2000 1uy), options).Dispose())

    expectEqual List.empty<string> (fs.List "/")
    Assert.That(WalDirectory.Exists(dir, options), Is.False)

// ---------------------------------------------------------------------------------------------
// AlreadyExists

[<Test>]
let ``AlreadyExists: Create on a directory that holds a file`` () =
    let fs, options = memoryOptions 65536L
    (fs :> IFileSystem).CreateDirectory dir
    fs.WriteAllBytes(at "notes.txt", bytes "keep me")
    assertKind WalErrorKind.AlreadyExists (fun () -> WriteAheadLog.Create(dir, mem "meta", options).Dispose())
    expectEqual [ "notes.txt" ] (fs.List dir)
    expectEqual (bytes "keep me") (fs.ReadAllBytes(at "notes.txt"))
    expectEqual [ "wal" ] (fs.List "/data")

[<Test>]
let ``AlreadyExists: Create on an existing log leaves it as it was`` () =
    let fs, options = logWith 65536L 3UL
    let before = fs.ReadAllBytes firstPath
    assertKind WalErrorKind.AlreadyExists (fun () -> WriteAheadLog.Create(dir, mem "other", options).Dispose())
    expectEqual before (fs.ReadAllBytes firstPath)
    let r = readWrite options Snapshot.Zero
    expectEqual (entriesFrom 1UL 3UL) (entryList r)
    expectEqual (bytes "meta") (r.Metadata.ToArray())

[<Test>]
let ``AlreadyExists: Create on a path that is a file`` () =
    let fs, options = memoryOptions 65536L
    (fs :> IFileSystem).CreateDirectory "/data"
    fs.WriteAllBytes(dir, bytes "a file")
    assertKind WalErrorKind.AlreadyExists (fun () -> WriteAheadLog.Create(dir, mem "meta", options).Dispose())
    expectEqual (bytes "a file") (fs.ReadAllBytes dir)
    expectEqual [ "wal" ] (fs.List "/data")

[<Test>]
let ``Create on an existing empty directory succeeds`` () =
    let fs, options = memoryOptions 65536L
    (fs :> IFileSystem).CreateDirectory dir

    do
        use wal = WriteAheadLog.Create(dir, mem "meta", options)
        wal.Save(state 2UL, entriesFrom 1UL 2UL)

    let r = readWrite options Snapshot.Zero
    expectEqual (entriesFrom 1UL 2UL) (entryList r)
    expectEqual [ "wal" ] (fs.List "/data")

// ---------------------------------------------------------------------------------------------
// Locked (real disk)

[<Test>]
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
            expectEqual (entriesFrom 1UL 3UL) (entryList (reader.ReadAll()))

        Assert.That(WalDirectory.Verify(tmp.Path, Snapshot.Zero, options), Is.EqualTo(state 3UL))
        // The writer is unharmed by the failed attempts.
        wal.Save(state 4UL, [ entry 4UL ])
    finally
        wal.Dispose()

    use again = WriteAheadLog.Open(tmp.Path, Snapshot.Zero, options)
    expectEqual (entriesFrom 1UL 4UL) (entryList (again.ReadAll()))
    again.Save(state 5UL, [ entry 5UL ])

// ---------------------------------------------------------------------------------------------
// Closed

[<Test>]
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
    Assert.That(errorKind (fun () -> wal.Dispose()), Is.EqualTo None)
    expectEqual after (fs.ReadAllBytes firstPath)
    expectEqual (entriesFrom 1UL 2UL) (readWrite options Snapshot.Zero |> entryList)

[<Test>]
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
    expectEqual (entriesFrom 1UL 2UL) (readWrite options Snapshot.Zero |> entryList)

// ---------------------------------------------------------------------------------------------
// CorruptRecord

[<Test>]
let ``CorruptRecord: a record of unknown type 9, with a valid CRC`` () =
    let _, options =
        oneSegment (fun e -> encodeRaw e (LanguagePrimitives.EnumOfValue<int64, RecordType> 9L) (bytes "x"))

    assertKind WalErrorKind.CorruptRecord (fun () -> readWrite options Snapshot.Zero |> ignore)
    assertKind WalErrorKind.CorruptRecord (fun () -> readOnly options Snapshot.Zero |> ignore)
    assertKind WalErrorKind.CorruptRecord (fun () -> WalDirectory.Verify(dir, Snapshot.Zero, options) |> ignore)

[<Test>]
let ``CorruptRecord: an entry record whose data is not a raftpb.Entry, with a valid CRC`` () =
    let _, options =
        oneSegment (fun e -> encodeRaw e RecordType.Entry (Array.create 12 0xFFuy))

    assertKind WalErrorKind.CorruptRecord (fun () -> readWrite options Snapshot.Zero |> ignore)
    assertKind WalErrorKind.CorruptRecord (fun () -> readOnly options Snapshot.Zero |> ignore)

/// Overwrites the record bytes (not the length word) of entry 2's frame with 0xFF.
let private garbleEntry2 (fs: MemoryFileSystem) (path: string) =
    let file = fs.ReadAllBytes path
    let offset = find (bytes "entry-0002-payload") file

    let frame =
        framesOf file
        |> List.find (fun f -> f.Offset < offset && offset < f.Offset + f.Size)

    Assert.That(frame.Type, Is.EqualTo 2)
    Array.fill file (frame.Offset + 8) (frame.Size - 8) 0xFFuy
    fs.WriteAllBytes(path, file)

[<Test>]
let ``CorruptRecord: record bytes that are not a protobuf, in a segment that is not the last`` () =
    let fs, options = logWith 512L 40UL
    let segments = segmentsOf fs
    Assert.That(segments.Length, Is.GreaterThanOrEqualTo 2)
    garbleEntry2 fs (at segments[0])
    assertKind WalErrorKind.CorruptRecord (fun () -> readWrite options Snapshot.Zero |> ignore)
    assertKind WalErrorKind.CorruptRecord (fun () -> readOnly options Snapshot.Zero |> ignore)
    assertKind WalErrorKind.CorruptRecord (fun () -> WalDirectory.Verify(dir, Snapshot.Zero, options) |> ignore)

[<Test>]
let ``CorruptRecord: record bytes that are not a protobuf in the last segment, which Repair refuses`` () =
    let fs, options = logWith 65536L 5UL
    garbleEntry2 fs firstPath
    let damaged = fs.ReadAllBytes firstPath
    assertKind WalErrorKind.CorruptRecord (fun () -> readWrite options Snapshot.Zero |> ignore)
    assertKind WalErrorKind.CorruptRecord (fun () -> readOnly options Snapshot.Zero |> ignore)
    assertKind WalErrorKind.CorruptRecord (fun () -> WalDirectory.Repair(dir, options) |> ignore)
    expectEqual damaged (fs.ReadAllBytes firstPath)
    expectEqual [ firstSegment ] (fs.List dir)

// ---------------------------------------------------------------------------------------------
// InvalidArgument

[<TestCase("")>]
[<TestCase("   ")>]
[<TestCase("\t\n")>]
[<TestCase("/")>]
[<TestCase("/data/w\000al")>]
let ``InvalidArgument: an empty, blank, root or NUL path; nothing is created`` (path: string) =
    let fs, options = memoryOptions 65536L
    assertKind WalErrorKind.InvalidArgument (fun () -> WriteAheadLog.Create(path, mem "meta", options).Dispose())
    assertKind WalErrorKind.InvalidArgument (fun () -> WriteAheadLog.Open(path, Snapshot.Zero, options).Dispose())

    assertKind WalErrorKind.InvalidArgument (fun () ->
        WriteAheadLog.OpenForRead(path, Snapshot.Zero, options).Dispose())

    assertKind WalErrorKind.InvalidArgument (fun () -> WalDirectory.Repair(path, options) |> ignore)
    assertKind WalErrorKind.InvalidArgument (fun () -> WalDirectory.Verify(path, Snapshot.Zero, options) |> ignore)
    assertKind WalErrorKind.InvalidArgument (fun () -> WalDirectory.ValidSnapshotEntries(path, options) |> ignore)
    Assert.That(WalDirectory.Exists(path, options), Is.False)
    expectEqual List.empty<string> (fs.List "/")

let private badOptions (fs: MemoryFileSystem) : (string * WalOptions) list =
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
    ]

[<Test>]
let ``InvalidArgument: Create with bad options creates nothing`` () =
    let fs = MemoryFileSystem()

    for what, options in badOptions fs do
        Assert.That(
            errorKind (fun () -> WriteAheadLog.Create(dir, mem "meta", options).Dispose()),
            Is.EqualTo(Some WalErrorKind.InvalidArgument),
            what
        )

        expectEqualAt what List.empty<string> (fs.List "/")

[<Test>]
let ``InvalidArgument: Open, OpenForRead, Repair and Verify with bad options leave the log alone`` () =
    let fs, good = logWith 65536L 3UL
    let before = fs.ReadAllBytes firstPath

    for what, options in badOptions fs do
        let check (action: unit -> unit) =
            Assert.That(errorKind action, Is.EqualTo(Some WalErrorKind.InvalidArgument), what)

        check (fun () -> WriteAheadLog.Open(dir, Snapshot.Zero, options).Dispose())
        check (fun () -> WriteAheadLog.OpenForRead(dir, Snapshot.Zero, options).Dispose())
        check (fun () -> WalDirectory.Repair(dir, options) |> ignore)
        check (fun () -> WalDirectory.Verify(dir, Snapshot.Zero, options) |> ignore)
        check (fun () -> WalDirectory.ValidSnapshotEntries(dir, options) |> ignore)

    expectEqual before (fs.ReadAllBytes firstPath)
    expectEqual [ firstSegment ] (fs.List dir)
    // No lock was left behind.
    expectEqual (entriesFrom 1UL 3UL) (readWrite good Snapshot.Zero |> entryList)

// ---------------------------------------------------------------------------------------------
// InvalidState

[<Test>]
let ``InvalidState: writing to a log opened with Open before ReadAll, and ReadAll twice`` () =
    let fs, options = logWith 65536L 2UL
    let before = fs.ReadAllBytes firstPath

    do
        use wal = WriteAheadLog.Open(dir, Snapshot.Zero, options)
        assertKind WalErrorKind.InvalidState (fun () -> wal.Save(state 3UL, [ entry 3UL ]))
        assertKind WalErrorKind.InvalidState (fun () -> wal.SaveSnapshot(Snapshot(2UL, 1UL)))
        assertKind WalErrorKind.InvalidState (fun () -> wal.Sync())
        expectEqual before (fs.ReadAllBytes firstPath)
        expectEqual (entriesFrom 1UL 2UL) (entryList (wal.ReadAll()))
        assertKind WalErrorKind.InvalidState (fun () -> wal.ReadAll() |> ignore)
        // Still appending after the refused second ReadAll.
        wal.Save(state 3UL, [ entry 3UL ])

    expectEqual (entriesFrom 1UL 3UL) (readWrite options Snapshot.Zero |> entryList)

[<Test>]
let ``InvalidState: a log opened with OpenForRead cannot be written, before or after ReadAll`` () =
    let fs, options = logWith 65536L 2UL
    let before = fs.ReadAllBytes firstPath
    use wal = WriteAheadLog.OpenForRead(dir, Snapshot.Zero, options)
    assertKind WalErrorKind.InvalidState (fun () -> wal.Save(state 3UL, [ entry 3UL ]))
    assertKind WalErrorKind.InvalidState (fun () -> wal.Sync())
    expectEqual (entriesFrom 1UL 2UL) (entryList (wal.ReadAll()))
    assertKind WalErrorKind.InvalidState (fun () -> wal.Save(state 3UL, [ entry 3UL ]))
    assertKind WalErrorKind.InvalidState (fun () -> wal.SaveSnapshot(Snapshot(2UL, 1UL)))
    assertKind WalErrorKind.InvalidState (fun () -> wal.ReadAll() |> ignore)
    expectEqual before (fs.ReadAllBytes firstPath)

[<Test>]
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
    expectEqual before (fs.ReadAllBytes firstPath)

// ---------------------------------------------------------------------------------------------
// Io and Failed (fail closed)

/// After a write failed: every further write is Failed, with or without the fault.
let private assertFailedClosed (fs: MemoryFileSystem) (wal: WriteAheadLog) =
    let check () =
        assertKind WalErrorKind.Failed (fun () -> wal.Save(state 99UL, [ entry 99UL ]))
        assertKind WalErrorKind.Failed (fun () -> wal.Save(HardState(9UL, 9UL, 9UL), List.empty<Entry>))
        assertKind WalErrorKind.Failed (fun () -> wal.Save(HardState.Empty, List.empty<Entry>))
        assertKind WalErrorKind.Failed (fun () -> wal.Sync())
        assertKind WalErrorKind.Failed (fun () -> wal.SaveSnapshot(Snapshot(1UL, 1UL)))

    check ()
    fs.Faults.Clear()
    check ()
    let ex = expectWalError (fun () -> wal.Sync())
    Assert.That(ex.InnerException, Is.InstanceOf<IOException>())
    // Closing a failed log does not try to write again, so it does not throw.
    Assert.That(errorKind (fun () -> wal.Dispose()), Is.EqualTo None)

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

    Assert.That(read.Length, Is.GreaterThanOrEqualTo acknowledged.Length)
    expectEqual acknowledged (List.take acknowledged.Length read)
    let again = readWrite options Snapshot.Zero |> entryList
    expectEqual (read @ [ entry (uint64 read.Length + 1UL) ]) again

[<TestCase("fdatasync")>]
[<TestCase("write")>]
let ``Io, then Failed: a Save whose write or fdatasync fails; reopening keeps what was acknowledged`` (call: string) =
    let fs, options = memoryOptions 65536L
    let wal = WriteAheadLog.Create(dir, mem "meta", options)
    wal.Save(state 3UL, entriesFrom 1UL 3UL)
    wal.Save(state 4UL, [ entry 4UL ])

    fs.Faults.Add(
        match call with
        | "fdatasync" -> FailDataSync firstSegment
        | _ -> FailWrite firstSegment
    )

    let ex = expectWalError (fun () -> wal.Save(state 5UL, [ entry 5UL ]))
    Assert.That(ex.Kind, Is.EqualTo WalErrorKind.Io)
    Assert.That(ex.InnerException, Is.InstanceOf<IOException>())
    assertFailedClosed fs wal
    reopenHolds options (entriesFrom 1UL 4UL)

[<Test>]
let ``Io, then Failed: SaveSnapshot and Sync whose fdatasync fails`` () =
    let fs, options = memoryOptions 65536L
    let wal = WriteAheadLog.Create(dir, mem "meta", options)
    wal.Save(state 2UL, entriesFrom 1UL 2UL)
    fs.Faults.Add(FailDataSync firstSegment)
    assertKind WalErrorKind.Io (fun () -> wal.SaveSnapshot(Snapshot(2UL, 1UL)))
    assertFailedClosed fs wal
    reopenHolds options (entriesFrom 1UL 2UL)

    let fs, options = memoryOptions 65536L
    let wal = WriteAheadLog.Create(dir, mem "meta", options)
    wal.Save(state 2UL, entriesFrom 1UL 2UL)
    // A commit-only state is not synced by Save; Sync must write and sync it.
    wal.Save(state 3UL, List.empty<Entry>)
    fs.Faults.Add(FailWrite firstSegment)
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

[<Test>]
let ``Io, then Failed: preallocating the next segment fails, and the Save that needs the cut says so`` () =
    let fs, options = memoryOptions 512L
    let wal = WriteAheadLog.Create(dir, mem "meta", options)
    // Create has already prepared 0.tmp; preparing 1.tmp (after the first cut) fails.
    fs.Faults.Add(FailPreallocate "wal/1.tmp")
    let acknowledged, failure = saveUntilFailure wal
    Assert.That(failure.IsSome, Is.True, "a Save failed")
    Assert.That(failure.Value.Kind, Is.EqualTo WalErrorKind.Io)
    // The first cut succeeded with the file prepared before the fault; the second had none.
    Assert.That(segmentsOf fs |> List.length, Is.EqualTo 2)
    assertFailedClosed fs wal
    reopenHolds options acknowledged

[<Test>]
let ``Io, then Failed: fdatasync of the new segment fails during a cut`` () =
    let fs, options = memoryOptions 512L
    let wal = WriteAheadLog.Create(dir, mem "meta", options)
    // Not ".tmp": the first segment's open handle still carries the path Create opened it at,
    // "/data/wal.tmp/...", and the in-memory file system matches faults against that.
    fs.Faults.Add(FailDataSync "wal/0.tmp")
    let acknowledged, failure = saveUntilFailure wal
    Assert.That(failure.IsSome, Is.True, "a Save failed")
    Assert.That(failure.Value.Kind, Is.EqualTo WalErrorKind.Io)
    Assert.That(acknowledged, Is.Not.Empty)
    // The half-made segment was never renamed into place.
    expectEqual [ firstSegment ] (segmentsOf fs)
    assertFailedClosed fs wal
    reopenHolds options acknowledged

[<Test>]
let ``Io: a segment name that cannot be opened as a file, and a ReadAll that cannot preallocate`` () =
    let fs, options = memoryOptions 65536L
    (fs :> IFileSystem).CreateDirectory firstPath
    assertKind WalErrorKind.Io (fun () -> WriteAheadLog.Open(dir, Snapshot.Zero, options).Dispose())
    assertKind WalErrorKind.Io (fun () -> WriteAheadLog.OpenForRead(dir, Snapshot.Zero, options).Dispose())

    let fs, options = logWith 65536L 2UL
    fs.Faults.Add(FailPreallocate firstSegment)

    do
        use wal = WriteAheadLog.Open(dir, Snapshot.Zero, options)
        assertKind WalErrorKind.Io (fun () -> wal.ReadAll() |> ignore)
        assertKind WalErrorKind.InvalidState (fun () -> wal.Save(state 3UL, [ entry 3UL ]))

    fs.Faults.Clear()
    expectEqual (entriesFrom 1UL 2UL) (readWrite options Snapshot.Zero |> entryList)

[<Test>]
let ``Io: Dispose whose final sync fails still closes the log`` () =
    let fs, options = memoryOptions 65536L
    let wal = WriteAheadLog.Create(dir, mem "meta", options)
    wal.Save(state 2UL, entriesFrom 1UL 2UL)
    // A commit-only change is buffered, not written, until a sync.
    wal.Save(state 3UL, List.empty<Entry>)
    fs.Faults.Add(FailWrite firstSegment)
    assertKind WalErrorKind.Io (fun () -> wal.Dispose())
    assertKind WalErrorKind.Closed (fun () -> wal.Save(state 4UL, [ entry 3UL ]))
    fs.Faults.Clear()
    // The lock was released.
    let r = readWrite options Snapshot.Zero
    expectEqual (entriesFrom 1UL 2UL) (entryList r)
    Assert.That(r.State, Is.EqualTo(state 2UL))

// ---------------------------------------------------------------------------------------------
// Exists, Verify, ValidSnapshotEntries

[<Test>]
let ``Exists: only a directory holding a segment file`` () =
    let fs, options = memoryOptions 65536L
    Assert.That(WalDirectory.Exists(dir, options), Is.False, "missing")
    (fs :> IFileSystem).CreateDirectory dir
    Assert.That(WalDirectory.Exists(dir, options), Is.False, "empty")
    fs.WriteAllBytes(at "notes.txt", bytes "x")
    Assert.That(WalDirectory.Exists(dir, options), Is.False, "foreign files only")
    Assert.That(WalDirectory.Exists(at "notes.txt", options), Is.False, "a file")
    Assert.That(WalDirectory.Exists("", options), Is.False, "empty path")

    let fs, options = logWith 65536L 1UL
    Assert.That(WalDirectory.Exists(dir, options), Is.True, "a log")
    Assert.That(WalDirectory.Exists(dir + "/", options), Is.True, "a log, trailing slash")
    Assert.That(WalDirectory.Exists("/data/other", options), Is.False, "another path")
    (fs :> IFileSystem).RemoveFile firstPath
    Assert.That(WalDirectory.Exists(dir, options), Is.False, "segment removed")

[<Test>]
let ``Verify returns the last hard state, across cuts`` () =
    let fs, options = memoryOptions 512L

    do
        use wal = WriteAheadLog.Create(dir, mem "meta", options)

        for i in 1UL .. 30UL do
            wal.Save(HardState(i / 10UL + 1UL, 2UL, i - 1UL), [ entry i ])

        wal.SaveSnapshot(Snapshot(20UL, 3UL))
        wal.Save(HardState(4UL, 3UL, 25UL), List.empty<Entry>)

    Assert.That(segmentsOf fs |> List.length, Is.GreaterThan 2)
    Assert.That(WalDirectory.Verify(dir, Snapshot.Zero, options), Is.EqualTo(HardState(4UL, 3UL, 25UL)))
    Assert.That(WalDirectory.Verify(dir, Snapshot(20UL, 3UL), options), Is.EqualTo(HardState(4UL, 3UL, 25UL)))

    assertKind WalErrorKind.SnapshotMismatch (fun () ->
        WalDirectory.Verify(dir, Snapshot(20UL, 2UL), options) |> ignore)

[<Test>]
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

    expectEqual
        [
            Snapshot.Zero
            Snapshot(3UL, 1UL)
            Snapshot(5UL, 1UL, members)
            Snapshot(7UL, 1UL)
        ]
        valid

    Assert.That(valid[2].ConfState, Is.EqualTo members)

// ---------------------------------------------------------------------------------------------
// Real disk, end to end

[<Test>]
let ``real disk: cuts, a snapshot, a torn tail, UnexpectedEof, Repair, reopen and append`` () =
    use tmp = new TempDir()
    let options = WalOptions(SegmentSizeBytes = 8L * 1024L)

    let big (i: uint64) =
        Entry(1UL, i, ReadOnlyMemory(Array.init 700 (fun j -> byte ((int i + j) % 251 + 1))))

    let segments () =
        Directory.GetFiles(tmp.Path, "*.wal") |> Array.sort

    Assert.That(WalDirectory.Exists(tmp.Path, options), Is.False)
    let mutable n = 0UL

    do
        use wal = WriteAheadLog.Create(tmp.Path, mem "node-1", options)

        while (segments ()).Length < 3 do
            n <- n + 1UL
            wal.Save(HardState(1UL, 1UL, n - 1UL), [ big n ])

        Assert.That(n, Is.GreaterThan 10UL)
        wal.SaveSnapshot(Snapshot(10UL, 1UL))
        wal.Save(HardState.Empty, [ big (n + 1UL) ])

    Assert.That(WalDirectory.Exists(tmp.Path, options), Is.True)
    Assert.That(WalDirectory.Verify(tmp.Path, Snapshot(10UL, 1UL), options), Is.EqualTo(HardState(1UL, 1UL, n - 1UL)))
    let all = [ for i in 1UL .. n + 1UL -> big i ]

    do
        use wal = WriteAheadLog.OpenForRead(tmp.Path, Snapshot.Zero, options)
        expectEqual all (entryList (wal.ReadAll()))

    // Tear the last record of the last segment.
    let last = (segments ())[(segments ()).Length - 1]
    let lastFrame = framesOf (File.ReadAllBytes last) |> List.last
    Assert.That(lastFrame.Type, Is.EqualTo 2, "the last record is the last entry")
    let damaged = (File.ReadAllBytes last)[.. lastFrame.Offset + lastFrame.Size / 2 - 1]
    File.WriteAllBytes(last, damaged)

    assertKind WalErrorKind.UnexpectedEof (fun () ->
        use wal = WriteAheadLog.Open(tmp.Path, Snapshot.Zero, options)
        wal.ReadAll() |> ignore)

    do
        use wal = WriteAheadLog.OpenForRead(tmp.Path, Snapshot.Zero, options)
        expectEqual (List.take (int n) all) (entryList (wal.ReadAll()))

    Assert.That(WalDirectory.Repair(tmp.Path, options), Is.EqualTo RepairOutcome.Repaired)
    expectEqual damaged (File.ReadAllBytes(last + ".broken"))

    do
        use wal = WriteAheadLog.Open(tmp.Path, Snapshot(10UL, 1UL), options)
        let r = wal.ReadAll()
        expectEqual [ for i in 11UL .. n -> big i ] (entryList r)
        Assert.That(r.State, Is.EqualTo(HardState(1UL, 1UL, n - 1UL)))
        expectEqual (bytes "node-1") (r.Metadata.ToArray())
        wal.Save(HardState(1UL, 1UL, n), [ big (n + 1UL); big (n + 2UL) ])

    use wal = WriteAheadLog.OpenForRead(tmp.Path, Snapshot.Zero, options)
    let r = wal.ReadAll()
    expectEqual [ for i in 1UL .. n + 2UL -> big i ] (entryList r)
    Assert.That(r.State, Is.EqualTo(HardState(1UL, 1UL, n)))
