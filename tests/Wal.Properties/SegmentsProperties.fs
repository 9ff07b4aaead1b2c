/// Wal.Model's reference decoder (Segments.decode) and Wal.Core's (WalDirectory.Scan), written
/// apart, give the same answer on logs the engine wrote, on those logs damaged, and on junk:
/// the same records, and the same reason to stop.
module Wal.Properties.SegmentsProperties

open System
open System.IO
open FsCheck
open FsCheck.FSharp
open FsCheck.NUnit
open Wal
open Wal.Model
open Wal.Model.Segments
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

[<Property(Arbitrary = [| typeof<Scenarios.Clean> |], MaxTest = 60)>]
let ``the two decoders agree on logs the engine wrote`` (scenario: Scenarios.Scenario) = agree (written scenario)

type Damage =
    | Flip of at: int * bit: int
    | Cut of at: int
    | ZeroSector of at: int
    | Overwrite of at: int * junk: byte[]

[<Property(Arbitrary = [| typeof<Scenarios.Clean> |], MaxTest = 300)>]
let ``the two decoders agree on damaged logs`` (scenario: Scenarios.Scenario) (which: int) (damage: Damage) =
    let segments = written scenario
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

    agree (List.updateAt i (name, damaged) segments)

[<Property(MaxTest = 1000)>]
let ``the two decoders agree on junk`` (junk: byte[]) (frames: (int * byte[]) list) =
    // Junk alone, and junk behind plausible length words, so the record parsers see it too.
    let framed =
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

    agree [ "0000000000000000-0000000000000000.wal", junk ]
    .&. agree [ "0000000000000000-0000000000000000.wal", framed ]

/// etcd 3.4's 10 MiB limit counts the padding: both decoders draw the line at the same byte.
[<NUnit.Framework.TestCase(0x00000000009FFFF8UL, "UnexpectedEof")>]
[<NUnit.Framework.TestCase(0x00000000009FFFFFUL, "UnexpectedEof")>]
[<NUnit.Framework.TestCase(0x8600000000A00000UL, "RecordTooLarge")>]
[<NUnit.Framework.TestCase(0x87000000009FFFF9UL, "RecordTooLarge")>]
[<NUnit.Framework.TestCase(0x87000000009FFFF8UL, "UnexpectedEof")>]
[<NUnit.Framework.TestCase(0x0000000000A00000UL, "RecordTooLarge")>]
let ``both decoders put the 10 MiB limit in the same place`` (word: uint64, expected: string) =
    let segment =
        [ "0000000000000000-0000000000000000.wal", BitConverter.GetBytes word ]

    let engine = engineScan segment

    expectEqual
        ([], expected)
        (engine
         |> fun (records, stop) -> records |> List.map (fun (s, o, _, _, _) -> s, o), stop)

    expectEqual (reference segment |> snd) expected

// ---- wal check-dir's invariants

let private problemsOf (segments: (string * byte[]) list) =
    let files = Map.ofList segments
    Segments.checkDirectory (List.map fst segments) (fun n -> int64 files[n].Length) (fun n -> files[n])

[<Property(Arbitrary = [| typeof<Scenarios.Clean> |], MaxTest = 100)>]
let ``check-dir finds no broken invariant in a log the engine wrote for raft`` (scenario: Scenarios.Scenario) =
    let errors =
        problemsOf (written scenario) |> List.filter (Segments.isWarning >> not)

    errors.IsEmpty
    |> Prop.label (String.Join("; ", errors |> List.map Segments.describeProblem))

/// A log written with the engine by `write`, with 512-byte segments so that cuts happen.
let private logOf (write: WriteAheadLog -> unit) =
    let fs, options = memoryOptions 512L
    use wal = WriteAheadLog.Create(dir, mem "node-1", options)
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

[<NUnit.Framework.Test>]
let ``check-dir reports each broken invariant`` () =
    let expectEqual (expected: string list) (found: string list) =
        if expected <> found then
            failwith $"expected %A{expected}, found %A{found}"

    let raftLike (wal: WriteAheadLog) =
        for i in 1UL .. 20UL do
            wal.Save(HardState(1UL, 1UL, i - 1UL), entries 1UL i 1)

    let good = logOf raftLike
    NUnit.Framework.Assert.That(good.Length, NUnit.Framework.Is.GreaterThan 3)
    expectEqual [] (kinds (problemsOf good))

    // A segment gone from the middle; a stray file.
    let gap = List.removeAt 1 good
    // The segment after the gap does not continue the CRC chain either.
    expectEqual [ "SequenceGap"; "CrcChainBroken" ] (kinds (problemsOf gap))
    let files = Map.ofList good

    let withForeign =
        Segments.checkDirectory ("notes.txt" :: List.map fst good) (fun n -> int64 files[n].Length) (fun n -> files[n])

    expectEqual [ "ForeignFile" ] (kinds withForeign)
    NUnit.Framework.Assert.That(withForeign |> List.forall Segments.isWarning)

    // A segment renamed as if entries were missing before it.
    let name, bytes = good[2]
    let renamed = name[..16] + "00000000000003e8.wal"
    expectEqual [ "NameIndexGap" ] (kinds (problemsOf (List.updateAt 2 (renamed, bytes) good)))

    // What the records say.
    expectEqual
        [ "EntryTermWentBackwards" ]
        (kinds (
            problemsOf (
                logOf (fun wal ->
                    wal.Save(HardState(2UL, 1UL, 0UL), entries 2UL 1UL 2)
                    wal.Save(HardState(2UL, 1UL, 0UL), entries 1UL 3UL 1))
            )
        ))

    expectEqual
        [ "StateTermWentBackwards" ]
        (kinds (
            problemsOf (
                logOf (fun wal ->
                    wal.Save(HardState(2UL, 1UL, 0UL), entries 2UL 1UL 1)
                    wal.Save(HardState(1UL, 1UL, 0UL), Array.empty))
            )
        ))

    expectEqual
        [ "CommitBeyondLastEntry" ]
        (kinds (problemsOf (logOf (fun wal -> wal.Save(HardState(1UL, 1UL, 5UL), entries 1UL 1UL 3)))))

    // Damage: the reference decoder's verdicts.
    let lastName, lastBytes = List.last good
    let written = Array.FindLastIndex(lastBytes, (fun b -> b <> 0uy)) + 1
    let cut = List.updateAt (good.Length - 1) (lastName, lastBytes[.. written - 5]) good
    expectEqual [ "TornRecord" ] (kinds (problemsOf cut))
    let flipped = Array.copy lastBytes
    flipped[written - 3] <- flipped[written - 3] ^^^ 0x10uy
    expectEqual [ "CrcChainBroken" ] (kinds (problemsOf (List.updateAt (good.Length - 1) (lastName, flipped) good)))
