/// Logs for the error tests: a log at "/data/wal" on the in-memory file system, built through the
/// engine or by hand with its encoder (so framing and the CRC chain are valid), the frames of a
/// segment as the reference decoder reads them, and damage aimed at one record.
module Wal.Properties.LogFixtures

open Expecto
open System
open Wal
open Wal.Engine
open Wal.Format
open Wal.Storage
open Wal.Simulation
open Wal.Properties.Support

let dir = "/data/wal"
let at (name: string) = dir + "/" + name
let firstPath = at firstSegment

/// An entry whose payload names its index, so damage can be aimed at one entry's bytes.
let entry (index: uint64) =
    Entry(1UL, index, mem $"entry-{index:D4}-payload")

let entriesFrom (first: uint64) (last: uint64) = [ for i in first..last -> entry i ]
let state (commit: uint64) = HardState(1UL, 1UL, commit)

let assertKind (expected: WalErrorKind) (action: unit -> unit) =
    Expect.equal (errorKind action) (Some expected) ""

let entryList (r: ReadAllResult) = List.ofSeq r.Entries

let indexes (r: ReadAllResult) =
    r.Entries |> Seq.map (fun e -> e.Index) |> List.ofSeq

/// The names of the segment files in the log's directory, in order.
let segmentsOf (fs: SimulatedFileSystem) =
    fs.List dir |> List.filter (fun n -> n.EndsWith ".wal")

/// A log at "/data/wal" holding entries 1..count, each saved (and synced) by its own Save.
let logWith (segmentSize: int64) (count: uint64) =
    let fs, options = memoryOptions segmentSize
    use wal = WriteAheadLog.Create(dir, mem "meta", options)

    for i in 1UL .. count do
        wal.Save(state i, [ entry i ])

    fs, options

/// Open (for writing) at a snapshot and ReadAll.
let readWrite (options: WalOptions) (snapshot: Snapshot) =
    use wal = WriteAheadLog.Open(dir, snapshot, options)
    wal.ReadAll()

/// OpenForRead at a snapshot and ReadAll.
let readOnly (options: WalOptions) (snapshot: Snapshot) =
    use wal = WriteAheadLog.OpenForRead(dir, snapshot, options)
    wal.ReadAll()

/// Where a byte pattern first occurs.
let find (pattern: byte[]) (file: byte[]) =
    let i =
        MemoryExtensions.IndexOf(ReadOnlySpan<byte>(file), ReadOnlySpan<byte>(pattern))

    Expect.isGreaterThanOrEqual i 0 "pattern not found"
    i

/// Changes one byte of a file in the log's directory.
let flipByte (fs: SimulatedFileSystem) (path: string) (offset: int) =
    let file = fs.ReadAllBytes path
    file[offset] <- file[offset] ^^^ 0x20uy
    fs.WriteAllBytes(path, file)

/// Writes a segment by hand with the engine's own encoder, so framing and CRC chain are valid.
/// Returns the chain's value after the last record.
let handBuild (fs: SimulatedFileSystem) (name: string) (previousCrc: uint32) (write: Encoder -> unit) =
    let ifs = fs :> IFileSystem
    ifs.CreateDirectory dir
    use file = ifs.OpenFile(at name, OpenMode.CreateTruncate)
    let encoder = Encoder(PageWriter(file, 0L), previousCrc)
    write encoder
    encoder.Writer.Flush()
    encoder.Crc

let encodeEntry (e: Encoder) (value: Entry) =
    let value = value
    e.EncodeEntry(&value)

let encodeState (e: Encoder) (value: HardState) =
    let value = value
    e.EncodeState(&value)

let encodeSnapshot (value: Snapshot) =
    let value = value
    RecordCodec.EncodeSnapshot(&value)

let encodeRaw (e: Encoder) (kind: RecordType) (data: byte[]) =
    e.Encode(kind, ReadOnlySpan<byte>(data), ReadOnlySpan<byte>.Empty)

/// Crc and Metadata: what every segment starts with.
let header (metadata: string) (e: Encoder) =
    e.EncodeCrc()
    encodeRaw e RecordType.Metadata (bytes metadata)

/// What a new log's first segment holds: Crc(0), Metadata, the zero Snapshot.
let firstHeader (metadata: string) (e: Encoder) =
    header metadata e
    encodeRaw e RecordType.Snapshot (encodeSnapshot Snapshot.Zero)

let secondSegment = "0000000000000001-0000000000000002.wal"

/// Two hand-built segments, as a cut leaves them: entry 1 in the first, entry 2 in the second,
/// whose metadata record holds secondMetadata.
let twoSegments (secondMetadata: string) =
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
let oneSegment (extra: Encoder -> unit) =
    let fs, options = memoryOptions 65536L

    handBuild fs firstSegment 0u (fun e ->
        firstHeader "a" e
        encodeEntry e (entry 1UL)
        extra e)
    |> ignore

    fs, options
