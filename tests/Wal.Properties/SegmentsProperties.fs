/// Wal.Model's reference decoder (Segments.decode) and Wal.Core's (WalDirectory.Scan), written
/// apart, give the same answer on logs the engine wrote, on those logs damaged, and on junk:
/// the same records, and the same reason to stop.
module Wal.Properties.SegmentsProperties

open Expecto
open System
open System.IO
open FsCheck
open FsCheck.FSharp
open Wal
open Wal.Model
open Wal.Model.Segments
open Wal.Model.DirectoryCheck
open Wal.Oracle
open Wal.Properties.Support

let private dir = "/data/wal"

/// The engine's Scan over the segments, in the reference decoder's terms.
let private engineScan (segments: (string * byte[]) list) =
    let fs, options = memoryOptions 65536L
    (fs :> Wal.Storage.IFileSystem).CreateDirectory dir

    for name, bytes in segments do
        fs.WriteAllBytes(Path.Combine(dir, name), bytes)

    let records = ResizeArray()

    let stop =
        try
            for r in WalDirectory.Scan(dir, options) do
                records.Add(r.Segment, r.Offset, int64 r.Type, r.Crc, r.Data.ToArray())

            "clean end"
        with :? WalException as e ->
            string e.Kind

    List.ofSeq records, stop

let private reference (segments: (string * byte[]) list) =
    let decoded = decode segments

    let stop =
        match decoded.Stop with
        | CleanEnd -> "clean end"
        | Torn _ -> "UnexpectedEof"
        | Stop.CrcMismatch _ -> "CrcMismatch"
        | Corrupt _ -> "CorruptRecord"
        | TooLarge _ -> "RecordTooLarge"

    decoded.Records
    |> List.map (fun r -> r.Segment, r.Offset, r.Type, r.Crc, r.Data),
    stop

let private agree (segments: (string * byte[]) list) =
    let engine = engineScan segments
    let model = reference segments

    engine = model
    |> Prop.label
        $"engine: {snd engine} after {(fst engine).Length} records; reference: {snd model} after {(fst model).Length} records"

/// Segments the engine wrote for a generated scenario.
let private written (scenario: Scenarios.Scenario) =
    let fs, options = memoryOptions scenario.SegmentSize
    ModelProperties.runOn (fs, options) scenario |> ignore

    fs.List dir
    |> Seq.filter (fun n -> n.EndsWith ".wal")
    |> Seq.sort
    |> Seq.map (fun n -> n, fs.ReadAllBytes(Path.Combine(dir, n)))
    |> List.ofSeq

let ``the two decoders agree on logs the engine wrote`` (scenario: Scenarios.Scenario) = agree (written scenario)

type Damage =
    | Flip of at: int * bit: int
    | Cut of at: int
    | ZeroSector of at: int
    | Overwrite of at: int * junk: byte[]

/// The segments with one damage done to the `which`th.
let private damaged (segments: (string * byte[]) list) (which: int) (damage: Damage) =
    let i = abs which % segments.Length
    let name, bytes = segments[i]
    let written = Array.FindLastIndex(bytes, (fun b -> b <> 0uy)) + 1
    let at (k: int) = abs k % (written + 1)
    let copy = Array.copy bytes

    let damaged =
        match damage with
        | Flip(k, bit) ->
            let j = min (at k) (copy.Length - 1)
            copy[j] <- copy[j] ^^^ (1uy <<< (abs bit % 8))
            copy
        | Cut k -> copy[.. at k - 1]
        | ZeroSector k ->
            let start = at k / 512 * 512
            Array.fill copy start (max 0 (min 512 (copy.Length - start))) 0uy
            copy
        | Overwrite(k, junk) ->
            let j = at k
            let n = min junk.Length (copy.Length - j)
            Array.blit junk 0 copy j (max 0 n)
            copy

    List.updateAt i (name, damaged) segments

let ``the two decoders agree on damaged logs`` (scenario: Scenarios.Scenario) (which: int) (damage: Damage) =
    agree (damaged (written scenario) which damage)

/// Junk behind plausible length words, so the record parsers see it too.
let private frame (frames: (int * byte[]) list) =
    frames
    |> List.collect (fun (pad, body) ->
        let word =
            uint64 body.Length
            ||| (if pad % 3 = 0 then
                     0x8000000000000000UL ||| (uint64 (abs pad % 8) <<< 56)
                 else
                     0UL)

        List.ofArray (BitConverter.GetBytes word) @ List.ofArray body)
    |> Array.ofList

let ``the two decoders agree on junk`` (junk: byte[]) (frames: (int * byte[]) list) =
    let framed = frame frames
    // Junk alone, and junk behind plausible length words.
    agree [ "0000000000000000-0000000000000000.wal", junk ]
    .&. agree [ "0000000000000000-0000000000000000.wal", framed ]

/// etcd 3.4's 10 MiB limit counts the padding: both decoders draw the line at the same byte.
let ``both decoders put the 10 MiB limit in the same place`` (word: uint64, expected: string) =
    let segment =
        [ "0000000000000000-0000000000000000.wal", BitConverter.GetBytes word ]

    let engine = engineScan segment

    Expect.equal
        (engine
         |> fun (records, stop) -> records |> List.map (fun (s, o, _, _, _) -> s, o), stop)
        ([], expected)
        ""

    Expect.equal expected (reference segment |> snd) ""

// ---- wal check-dir's invariants

/// DirectoryCheck's verdict, and PlainDirectoryCheck's (the walk as first written) beside it.
let private bothChecks (names: string list) (segments: (string * byte[]) list) =
    let files = Map.ofList segments
    let size n = int64 (Map.find n files).Length
    let read n = Map.find n files
    DirectoryCheck.check names size read, PlainDirectoryCheck.check names size read

let private problemsOf (segments: (string * byte[]) list) =
    let lean, plain = bothChecks (List.map fst segments) segments
    Expect.equal lean plain "the lean walk says what the plain walk said"
    lean

let private walksAgree (names: string list) (segments: (string * byte[]) list) =
    let lean, plain = bothChecks names segments

    lean = plain |> Prop.label $"lean: {lean}; plain: {plain}"

let ``check-dir's lean walk says what the plain walk said on damaged logs``
    (scenario: Scenarios.Scenario)
    (which: int)
    (damage: Damage)
    (foreign: bool)
    =
    let segments = damaged (written scenario) which damage
    let names = List.map fst segments
    // A stray file, and a segment gone from the middle, now and then.
    let names =
        if foreign then
            "notes.txt" :: (if names.Length > 2 then List.removeAt 1 names else names)
        else
            names

    walksAgree names segments

let ``check-dir's lean walk says what the plain walk said on junk`` (junk: byte[]) (frames: (int * byte[]) list) =
    let name = "0000000000000000-0000000000000000.wal"
    let framed = frame frames
    walksAgree [ name ] [ name, junk ] .&. walksAgree [ name ] [ name, framed ]

let ``check-dir finds no broken invariant in a log the engine wrote for raft`` (scenario: Scenarios.Scenario) =
    let errors =
        problemsOf (written scenario) |> List.filter (DirectoryCheck.isWarning >> not)

    errors.IsEmpty
    |> Prop.label (String.Join("; ", errors |> List.map DirectoryCheck.describe))

/// A log written with the engine by `write`, with 512-byte segments so that cuts happen.
/// The segments `write` leaves; written with etcd's rules, so the logs raft would never write
/// (which check-dir must report) can be made.
let private logOf (write: WriteAheadLog -> unit) =
    let fs, options = memoryOptions 512L
    use wal = WriteAheadLog.Create(dir, mem "node-1", lenient options)
    write wal
    wal.Dispose()

    fs.List dir
    |> Seq.filter (fun n -> n.EndsWith ".wal")
    |> Seq.sort
    |> Seq.map (fun n -> n, fs.ReadAllBytes(Path.Combine(dir, n)))
    |> List.ofSeq

let private entries (term: uint64) (first: uint64) (count: int) =
    [|
        for i in 0 .. count - 1 -> Entry(term, first + uint64 i, mem (String('x', 60)))
    |]

let private kinds (problems: Problem list) =
    problems
    |> List.map (fun p -> (string p).Split([| ' '; '\n'; '(' |])[0])
    |> List.distinct

let ``check-dir reports each broken invariant`` () =
    let raftLike (wal: WriteAheadLog) =
        for i in 1UL .. 20UL do
            wal.Save(HardState(1UL, 1UL, i - 1UL), entries 1UL i 1)

    let good = logOf raftLike
    Expect.isGreaterThan good.Length 3 ""
    Expect.equal (kinds (problemsOf good)) [] ""

    // A segment gone from the middle; a stray file.
    let gap = List.removeAt 1 good
    // The segment after the gap does not continue the CRC chain either.
    Expect.equal (kinds (problemsOf gap)) [ "SequenceGap"; "CrcChainBroken" ] ""

    let withForeign, plainForeign = bothChecks ("notes.txt" :: List.map fst good) good
    Expect.equal withForeign plainForeign "the lean walk says what the plain walk said"

    Expect.equal (kinds withForeign) [ "ForeignFile" ] ""
    Expect.isTrue (withForeign |> List.forall DirectoryCheck.isWarning) ""

    // A segment renamed as if entries were missing before it.
    let name, bytes = good[2]
    let renamed = name[..16] + "00000000000003e8.wal"
    Expect.equal (kinds (problemsOf (List.updateAt 2 (renamed, bytes) good))) [ "NameIndexGap" ] ""

    // What the records say.
    Expect.equal
        (kinds (
            problemsOf (
                logOf (fun wal ->
                    wal.Save(HardState(2UL, 1UL, 0UL), entries 2UL 1UL 2)
                    wal.Save(HardState(2UL, 1UL, 0UL), entries 1UL 3UL 1))
            )
        ))
        [ "EntryTermWentBackwards" ]
        ""

    Expect.equal
        (kinds (
            problemsOf (
                logOf (fun wal ->
                    wal.Save(HardState(2UL, 1UL, 0UL), entries 2UL 1UL 1)
                    wal.Save(HardState(1UL, 1UL, 0UL), Array.empty))
            )
        ))
        [ "StateTermWentBackwards" ]
        ""

    Expect.equal
        (kinds (problemsOf (logOf (fun wal -> wal.Save(HardState(1UL, 1UL, 5UL), entries 1UL 1UL 3)))))
        [ "CommitBeyondLastEntry" ]
        ""

    // raft's invariants the engine keeps as a second checksum (WalOptions.CheckRaftInvariants).
    let says (write: WriteAheadLog -> unit) = kinds (problemsOf (logOf write))

    Expect.equal
        (says (fun wal -> wal.Save(HardState(1UL, 1UL, 0UL), [| Entry(1UL, 1UL, enum<EntryType> 5, mem "x") |])))
        [ "UnknownEntryType" ]
        ""

    Expect.equal
        (says (fun wal ->
            wal.Save(HardState(1UL, 1UL, 2UL), entries 1UL 1UL 3)
            wal.Save(HardState(1UL, 1UL, 2UL), entries 1UL 2UL 1)))
        [ "CommittedEntryReplaced" ]
        ""

    Expect.equal
        (says (fun wal ->
            wal.Save(HardState(1UL, 1UL, 0UL), entries 1UL 1UL 1)
            wal.Save(HardState(1UL, 2UL, 0UL), Array.empty)))
        [ "VoteChangedWithinTerm" ]
        ""

    // An overwrite with a lower term than the entry it replaces is raft's to make: no problem.
    Expect.equal
        (says (fun wal ->
            wal.Save(HardState(1UL, 1UL, 0UL), entries 1UL 1UL 1)
            wal.Save(HardState(3UL, 1UL, 0UL), entries 3UL 2UL 1)
            wal.Save(HardState(3UL, 1UL, 0UL), entries 2UL 2UL 1)))
        []
        ""

    // A follower installs its leader's snapshot past its last entry, commits up to it and goes
    // on from there (etcd's server saves the snapshot record, then the hard state): the commit
    // rests on the snapshot, and the segments cut after it are named after it, as etcd names them.
    Expect.equal
        (says (fun wal ->
            wal.Save(HardState(1UL, 1UL, 1UL), entries 1UL 1UL 2)
            wal.SaveSnapshot(Snapshot(10UL, 2UL))
            wal.Save(HardState(2UL, 1UL, 10UL), Array.empty)
            wal.Save(HardState(2UL, 1UL, 12UL), entries 2UL 11UL 12)))
        []
        ""

    // Entries after the snapshot keep to its term.
    Expect.equal
        (says (fun wal ->
            wal.SaveSnapshot(Snapshot(10UL, 3UL))
            wal.Save(HardState(3UL, 1UL, 10UL), entries 2UL 11UL 1)))
        [ "EntryTermWentBackwards" ]
        ""

    // Damage: the reference decoder's verdicts.
    let lastName, lastBytes = List.last good
    let written = Array.FindLastIndex(lastBytes, (fun b -> b <> 0uy)) + 1
    let cut = List.updateAt (good.Length - 1) (lastName, lastBytes[.. written - 5]) good
    Expect.equal (kinds (problemsOf cut)) [ "TornRecord" ] ""
    let flipped = Array.copy lastBytes
    flipped[written - 3] <- flipped[written - 3] ^^^ 0x10uy
    Expect.equal (kinds (problemsOf (List.updateAt (good.Length - 1) (lastName, flipped) good))) [ "CrcChainBroken" ] ""

/// This file's tests.
let tests =
    testList
        "SegmentsProperties"
        [
            testPropertyWithConfig
                (fsCheck 60 [ typeof<Scenarios.Clean> ])
                "the two decoders agree on logs the engine wrote"
                ``the two decoders agree on logs the engine wrote``
            testPropertyWithConfig
                (fsCheck 300 [ typeof<Scenarios.Clean> ])
                "the two decoders agree on damaged logs"
                ``the two decoders agree on damaged logs``
            testPropertyWithConfig (fsCheck 1000 []) "the two decoders agree on junk" ``the two decoders agree on junk``
            testCases
                "both decoders put the 10 MiB limit in the same place"
                (fun (word, verdict) -> $"{hexWord word} {verdict}")
                [
                    0x00000000009FFFF8UL, "UnexpectedEof"
                    0x00000000009FFFFFUL, "UnexpectedEof"
                    0x8600000000A00000UL, "RecordTooLarge"
                    0x87000000009FFFF9UL, "RecordTooLarge"
                    0x87000000009FFFF8UL, "UnexpectedEof"
                    0x0000000000A00000UL, "RecordTooLarge"
                ]
                ``both decoders put the 10 MiB limit in the same place``
            testPropertyWithConfig
                (fsCheck 100 [ typeof<Scenarios.Clean> ])
                "check-dir finds no broken invariant in a log the engine wrote for raft"
                ``check-dir finds no broken invariant in a log the engine wrote for raft``
            testCase "check-dir reports each broken invariant" ``check-dir reports each broken invariant``
            testPropertyWithConfig
                (fsCheck 300 [ typeof<Scenarios.Clean> ])
                "check-dir's lean walk says what the plain walk said on damaged logs"
                ``check-dir's lean walk says what the plain walk said on damaged logs``
            testPropertyWithConfig
                (fsCheck 1000 [])
                "check-dir's lean walk says what the plain walk said on junk"
                ``check-dir's lean walk says what the plain walk said on junk``
        ]
