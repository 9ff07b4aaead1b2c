/// Encoding and decoding: the hand-written hot path against Google.Protobuf, round trips, and
/// a decoder that meets any byte string with records or a typed error, in bounded memory.
module Wal.Properties.CodecProperties

open Expecto
open System
open FsCheck
open FsCheck.FSharp
open Google.Protobuf
open Wal
open Wal.Format
open Wal.Properties.Support

type private PbEntry = Wal.Format.Protos.Entry
type private PbEntryType = Wal.Format.Protos.EntryType
type private PbHardState = Wal.Format.Protos.HardState
type private PbRecord = Wal.Format.Protos.Record

let private handEntry (e: Wal.Entry) =
    let head = Array.zeroCreate<byte> RecordCodec.MaxEntryHeaderBytes
    let n = RecordCodec.WriteEntryHeader(Span head, &e)
    Array.append head[.. n - 1] (e.Data.ToArray())

let private kinds =
    Gen.elements [ EntryType.Normal; EntryType.ConfChange; EntryType.ConfChangeV2 ]

type Generators =
    static member Entry() =
        gen {
            let! term = ArbMap.defaults |> ArbMap.generate<uint64>
            let! index = ArbMap.defaults |> ArbMap.generate<uint64>
            let! kind = kinds
            let! data = ArbMap.defaults |> ArbMap.generate<byte[]>
            return Wal.Entry(term, index, kind, ReadOnlyMemory data)
        }
        |> Arb.fromGen

let ``hand-encoded entries equal Google.Protobuf's bytes`` (entry: Wal.Entry) =
    let message =
        PbEntry(Term = entry.Term, Index = entry.Index, Type = enum<PbEntryType>(int entry.Type))
    // etcd writes Data only when non-nil; the engine stores empty data as absent.
    if not entry.Data.IsEmpty then
        message.Data <- ByteString.CopyFrom(entry.Data.Span)

    handEntry entry = message.ToByteArray()

let ``entries decode to what was encoded`` (entry: Wal.Entry) =
    let ok, decoded = RecordCodec.TryDecodeEntry(ReadOnlySpan(handEntry entry))
    ok && decoded = entry

let ``hand-encoded hard states equal Google.Protobuf's bytes and decode back``
    (term: uint64, vote: uint64, commit: uint64)
    =
    let state = HardState(term, vote, commit)
    let buffer = Array.zeroCreate<byte> RecordCodec.MaxHardStateBytes
    let n = RecordCodec.WriteHardState(Span buffer, &state)
    let google = PbHardState(Term = term, Vote = vote, Commit = commit).ToByteArray()
    let ok, decoded = RecordCodec.TryDecodeHardState(ReadOnlySpan(buffer, 0, n))
    buffer[.. n - 1] = google && ok && decoded = state

let ``records equal Google.Protobuf's bytes and round trip`` (kind: byte, crc: uint32, data: byte[]) =
    let kind = int64 (kind % 5uy) + 1L
    let buffer = Array.zeroCreate<byte>(RecordCodec.RecordSize(crc, data.Length))

    let n =
        RecordCodec.WriteRecord(
            Span buffer,
            LanguagePrimitives.EnumOfValue<int64, RecordType> kind,
            crc,
            ReadOnlySpan data,
            ReadOnlySpan.Empty
        )

    let google = PbRecord(Type = kind, Crc = crc)

    if data.Length > 0 then
        google.Data <- ByteString.CopyFrom data

    let mutable t = 0L
    let mutable c = 0u
    let mutable d = ReadOnlySpan<byte>.Empty
    let ok = RecordCodec.DecodeRecord(ReadOnlySpan buffer, &t, &c, &d) = RecordParse.Ok

    n = buffer.Length
    && buffer = google.ToByteArray()
    && ok
    && t = kind
    && c = crc
    && d.ToArray() = data

let ``snapshots with a ConfState round trip through Google.Protobuf``
    (index: uint64, term: uint64, voters: uint64 list, autoLeave: bool)
    =
    let snapshot =
        Snapshot(index, term, ConfState(voters, [ 7UL ], autoLeave = autoLeave))

    let ok, decoded =
        RecordCodec.TryDecodeSnapshot(ReadOnlySpan(RecordCodec.EncodeSnapshot &snapshot))

    ok && decoded = snapshot

/// Reads a single segment holding exactly these bytes; returns the entries or the error kind,
/// failing on any exception that is not a WalException, and the bytes allocated.
let private readSegment (write: bool) (segment: byte[]) =
    let fs, options = memoryOptions 4096L
    (fs :> Wal.Storage.IFileSystem).CreateDirectory "/w"
    fs.WriteAllBytes("/w/" + firstSegment, segment)
    let before = GC.GetAllocatedBytesForCurrentThread()

    let outcome =
        try
            let wal =
                if write then
                    WriteAheadLog.Open("/w", Snapshot.Zero, options)
                else
                    WriteAheadLog.OpenForRead("/w", Snapshot.Zero, options)

            use _ = wal
            Ok(wal.ReadAll().Entries |> List.ofSeq)
        with :? WalException as ex ->
            Error ex.Kind

    outcome, GC.GetAllocatedBytesForCurrentThread() - before

// The decoder's read buffer and, in write mode, the page writer's, plus a few records' worth.
let private fixedAllowance = 2L * 1024L * 1024L

let ``any byte string ends in records or a typed error, in memory bounded by its size`` (bytes: byte[]) (write: bool) =
    let _, allocated = readSegment write bytes
    allocated <= fixedAllowance + 4L * int64 bytes.Length

/// A small valid log, its first segment's bytes and the entries it holds.
let private validLog (payloads: byte[] list) =
    let fs, options = memoryOptions (1L <<< 20)

    let entries =
        payloads
        |> List.mapi (fun i p -> Wal.Entry(1UL, uint64 (i + 1), ReadOnlyMemory p))

    do
        use wal = WriteAheadLog.Create("/w", mem "meta", options)

        for e in entries do
            wal.Save(HardState(1UL, 1UL, e.Index), [| e |])

    let bytes = fs.ReadAllBytes("/w/" + firstSegment)
    // Up to the end of the data and its zero length word, for cheaper damage.
    bytes[.. dataEndOf bytes + 7], entries

type Damage =
    | Truncate of at: int
    | Flip of at: int * mask: byte
    | ZeroSector of sector: int
    | Garbage of at: int * junk: byte[]

let private damage (bytes: byte[]) (d: Damage) =
    let n = bytes.Length
    let copy = Array.copy bytes

    match d with
    | Truncate at -> bytes[.. (abs at % n) - 1]
    | Flip(at, mask) ->
        let i = abs at % n
        copy[i] <- copy[i] ^^^ (if mask = 0uy then 1uy else mask)
        copy
    | ZeroSector s ->
        let start = (abs s % ((n + 511) / 512)) * 512
        Array.fill copy start (min 512 (n - start)) 0uy
        copy
    | Garbage(at, junk) ->
        let i = abs at % n
        Array.append copy[.. i - 1] junk

let ``a damaged log gives a typed error or a prefix of what was written, never a wrong entry``
    (payloads: NonEmptyArray<byte[]>)
    (d: Damage)
    (write: bool)
    =
    let bytes, entries = validLog (List.ofArray payloads.Get)
    let outcome, _ = readSegment write (damage bytes d)

    match outcome with
    | Error _ -> true
    | Ok read -> read.Length <= entries.Length && read = List.take read.Length entries
    |> Prop.label $"damage {d}: {outcome}"

/// Where each frame of a segment's data ends, in order.
let private frameEnds (bytes: byte[]) =
    framesOf bytes |> List.map (fun f -> f.Offset + f.Size)

let ``truncated at any byte: a frame boundary reads exactly the records before it, anywhere else is a torn tail``
    (payloads: NonEmptyArray<byte[]>)
    (cut: PositiveInt)
    =
    let bytes, entries = validLog (List.ofArray payloads.Get)
    let ends = frameEnds bytes
    // Past the three records a new log starts with (Crc, Metadata, Snapshot).
    let headerEnd = ends[2]
    let dataEnd = List.last ends
    let at = headerEnd + cut.Get % (dataEnd - headerEnd + 1)
    let truncated = bytes[.. at - 1]
    // Every Save wrote one entry frame and one state frame; entries whose frame ends by `at` survive.
    let whole = ends |> List.filter (fun e -> e <= at) |> List.length
    let survivors = entries |> List.take ((whole - 3 + 1) / 2)
    let reader, _ = readSegment false truncated
    let writer, _ = readSegment true truncated

    let expectedWriter =
        if List.contains at ends then
            Ok survivors
        else
            Error WalErrorKind.UnexpectedEof

    (reader = Ok survivors |> Prop.label $"read-only: {reader}")
    .&. (writer = expectedWriter |> Prop.label $"write mode: {writer}")
    |> Prop.label $"cut at {at} of {dataEnd}; frames end at {ends}"

/// Under etcd 3.4's 10 MiB limit a claim past the end of the file is a torn write; at or over
/// it, etcd refuses the record outright (ErrMaxWALEntrySizeLimitExceeded), read-only or not.
let ``a length word claiming more than the file holds allocates nothing like it`` (claim: int) =
    let bytes, _ =
        validLog [ Text.Encoding.UTF8.GetBytes "a"; Text.Encoding.UTF8.GetBytes "b" ]

    let dataEnd = List.last (frameEnds bytes)
    let damaged = Array.copy bytes
    BitConverter.GetBytes(uint64 claim).CopyTo(damaged, dataEnd)
    let prefix, _ = readSegment false bytes

    for write in [ false; true ] do
        let outcome, allocated = readSegment write damaged

        let expected =
            if claim >= 10 * 1024 * 1024 then
                Error WalErrorKind.RecordTooLarge
            elif write then
                Error WalErrorKind.UnexpectedEof
            else
                prefix

        Expect.equal outcome expected $"write mode {write}"
        Expect.isLessThan allocated (4L * 1024L * 1024L) $"write mode {write}"

/// This file's tests.
let tests =
    testList
        "CodecProperties"
        [
            testPropertyWithConfig
                (fsCheck 100 [ typeof<Generators> ])
                "hand-encoded entries equal Google.Protobuf's bytes"
                ``hand-encoded entries equal Google.Protobuf's bytes``
            testPropertyWithConfig
                (fsCheck 100 [ typeof<Generators> ])
                "entries decode to what was encoded"
                ``entries decode to what was encoded``
            testPropertyWithConfig
                (fsCheck 100 [])
                "hand-encoded hard states equal Google.Protobuf's bytes and decode back"
                ``hand-encoded hard states equal Google.Protobuf's bytes and decode back``
            testPropertyWithConfig
                (fsCheck 100 [])
                "records equal Google.Protobuf's bytes and round trip"
                ``records equal Google.Protobuf's bytes and round trip``
            testPropertyWithConfig
                (fsCheck 100 [])
                "snapshots with a ConfState round trip through Google.Protobuf"
                ``snapshots with a ConfState round trip through Google.Protobuf``
            testPropertyWithConfig
                (fsCheck 300 [])
                "any byte string ends in records or a typed error, in memory bounded by its size"
                ``any byte string ends in records or a typed error, in memory bounded by its size``
            testPropertyWithConfig
                (fsCheck 300 [])
                "a damaged log gives a typed error or a prefix of what was written, never a wrong entry"
                ``a damaged log gives a typed error or a prefix of what was written, never a wrong entry``
            testPropertyWithConfig
                (fsCheck 200 [])
                "truncated at any byte: a frame boundary reads exactly the records before it, anywhere else is a torn tail"
                ``truncated at any byte: a frame boundary reads exactly the records before it, anywhere else is a torn tail``
            testCases
                "a length word claiming more than the file holds allocates nothing like it"
                string
                [
                    9 * 1024 * 1024
                    10 * 1024 * 1024 - 8
                    10 * 1024 * 1024
                    64 * 1024 * 1024
                    1024 * 1024 * 1024
                ]
                ``a length word claiming more than the file holds allocates nothing like it``
        ]
