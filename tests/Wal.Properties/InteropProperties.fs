/// The engine against etcd 3.4's own wal package (through interop/etcd/peer), for generated
/// raft-like operation sequences with small segments, snapshots, overwrites and reopens:
/// each reads what the other writes, both write the same bytes, and both classify and
/// repair the same damage the same way. Needs the peer (`dotnet fsi build.fsx peer`).
module Wal.Properties.InteropProperties

open System
open System.IO
open Expecto
open FsCheck
open FsCheck.FSharp
open Wal
open Wal.Oracle
open Wal.Simulation
open Wal.Model
open Wal.Properties.Support
open Wal.Oracle.Scenarios

let private savedSnapshots (scenario: Scenario) =
    scenario.Steps
    |> List.choose (function
        | Do(SaveSnapshot s) -> Some s
        | _ -> None)
    |> List.distinct

/// Snapshot 0, every saved snapshot, one index the log never held, and a held index with the wrong term.
let private readPoints (scenario: Scenario) =
    let saved = savedSnapshots scenario

    let lastIndex =
        scenario.Steps
        |> List.collect (function
            | Do(Save(_, entries)) -> entries |> List.map (fun e -> e.Index)
            | _ -> [])
        |> List.fold max 0UL

    let wrongTerm =
        match List.tryLast saved with
        | Some s -> [ { s with Term = s.Term + 7UL } ]
        | None -> []

    Snapshot.zero :: saved @ [ { Index = lastIndex + 3UL; Term = 1UL } ] @ wrongTerm

let private walFiles (dir: string) =
    Directory.GetFiles dir
    |> Array.map Path.GetFileName
    |> Array.sort
    |> List.ofArray

/// A file's bytes without the zeros preallocation leaves at its end.
let private withoutZeroTail (file: string) =
    let bytes = File.ReadAllBytes file
    let last = Array.FindLastIndex(bytes, (fun b -> b <> 0uy))
    bytes[..last]

/// Fails with both values when they differ: a plain exception, which FsCheck shrinks on and
/// reports once, with the shrunk case.
let private agree (what: string) (etcd: 'T) (engine: 'T) =
    if etcd <> engine then
        failwith $"{what} differs\n  etcd:   %A{etcd}\n  engine: %A{engine}"

let private copyDir (source: string) (target: string) =
    Directory.CreateDirectory target |> ignore

    for f in Directory.GetFiles source do
        File.Copy(f, Path.Combine(target, Path.GetFileName f))

    target

let ``etcd writes, the engine reads what etcd reads, at every snapshot`` (scenario: Scenario) =
    use tmp = new TempDir()
    EtcdPeer.write tmp.Path scenario |> ignore

    for at in readPoints scenario do
        let etcd = EtcdPeer.read tmp.Path at false

        let engine =
            EngineReadAll.read tmp.Path (Wal.FSharp.ModelConvert.toSnapshot at) false

        agree $"ReadAll at {at.Index}:{at.Term}" (ReadAllJson.render etcd) (ReadAllJson.render engine)

let ``the engine writes, etcd reads what the model says, at every snapshot`` (scenario: Scenario) =
    use tmp = new TempDir()
    EtcdPeer.engineWrite tmp.Path scenario |> ignore

    let log =
        scenario.Steps |> List.choose Step.operation |> List.fold Log.apply Log.empty

    for at in readPoints scenario do
        let etcd = EtcdPeer.read tmp.Path at false |> ReadAllJson.toOutcome

        // The model allows one outcome per place a segment may start (Stream.readsAt); etcd's
        // must be one of them, and is shown against the read of every record when it is not.
        let model =
            Stream.readsAt at log.Records
            |> List.tryFind (fun m -> Ok m = etcd)
            |> Option.defaultValue (Log.readAll at log)

        agree $"etcd's ReadAll at {at.Index}:{at.Term}" (Ok model) etcd

let ``the same operations write the same files, byte for byte`` (scenario: Scenario) =
    use tmp = new TempDir()
    let etcdDir = Path.Combine(tmp.Root, "etcd")
    let engineDir = Path.Combine(tmp.Root, "engine")
    let etcdReads = EtcdPeer.write etcdDir scenario
    let engineReads = EtcdPeer.engineWrite engineDir scenario
    agree "files in the directory" (walFiles etcdDir) (walFiles engineDir)

    for name in walFiles etcdDir do
        agree
            $"{name} (preallocated zeros aside)"
            (withoutZeroTail (Path.Combine(etcdDir, name)))
            (withoutZeroTail (Path.Combine(engineDir, name)))

    agree
        "what each reopen read"
        (etcdReads |> List.map ReadAllJson.render)
        (engineReads |> List.map ReadAllJson.render)

/// Saves larger than etcd's 128 KiB page buffer (now and then one of an entry larger than the
/// engine's 1 MiB buffer), into segments a few Saves long: etcd decides
/// each cut on the file position its page writer's writes leave mid-Save, before the sync, and
/// the engine, which writes a Save at once, must cut at the same Saves.
let private largeSaves =
    gen {
        let! segmentSize = Gen.elements [ 200_000L; 333_333L; 600_000L; 1_000_000L ]
        let! saves = Gen.choose (3, 9)

        let entrySize =
            Gen.frequency
                [
                    12, Gen.choose (0, 3000)
                    8, Gen.choose (3001, 60000)
                    8, Gen.choose (60001, 300000)
                    1, Gen.choose (1_100_000, 2_000_000)
                ]

        let! sizes =
            Gen.listOfLength saves (Gen.choose (1, 5) |> Gen.bind (fun n -> Gen.listOfLength n entrySize))

        let! seed = Gen.choose (0, 255)

        let batches =
            sizes
            |> List.mapFold
                (fun next batch ->
                    let entries =
                        batch
                        |> List.mapi (fun i n ->
                            {
                                Term = 1UL
                                Index = next + uint64 i
                                Kind = 0
                                Data = Array.init n (fun j -> byte (j + seed + i))
                            })

                    entries, next + uint64 batch.Length)
                1UL
            |> fst

        return
            {
                SegmentSize = segmentSize
                Steps =
                    [
                        yield Do(Create "large"B)
                        for batch in batches do
                            let state =
                                {
                                    Term = 1UL
                                    Vote = 1UL
                                    Commit = (List.last batch).Index
                                }

                            yield Do(Save(state, batch))
                    ]
            }
    }

/// For the property below: large Saves, shrunk as any scenario.
type LargeSaves =
    static member Scenario() = Arb.fromGenShrink (largeSaves, shrink)

/// Damage to the last segment, placed in per mille of its written length (zeros aside).
type Damage =
    | TruncateAt of permille: int
    | ZeroSector of permille: int
    | FlipBit of permille: int * bit: int

    member this.Apply(file: string) =
        let bytes = File.ReadAllBytes file
        let written = Array.FindLastIndex(bytes, (fun b -> b <> 0uy)) + 1

        let at (permille: int) =
            int (int64 written * int64 (abs permille % 1001) / 1000L)

        match this with
        | TruncateAt p -> File.WriteAllBytes(file, bytes[.. at p - 1])
        | ZeroSector p ->
            let start = at p / 512 * 512
            Array.fill bytes start (min 512 (bytes.Length - start)) 0uy
            File.WriteAllBytes(file, bytes)
        | FlipBit(p, bit) ->
            let i = min (at p) (bytes.Length - 1)

            if i >= 0 then
                bytes[i] <- bytes[i] ^^^ (1uy <<< (abs bit % 8))

            File.WriteAllBytes(file, bytes)

let ``etcd and the engine classify and repair the same damage the same way`` (scenario: Scenario) (damage: Damage) =
    use tmp = new TempDir()
    let source = Path.Combine(tmp.Root, "etcd")
    EtcdPeer.write source scenario |> ignore
    damage.Apply(Path.Combine(source, List.last (walFiles source |> List.filter (fun n -> n.EndsWith ".wal"))))

    let copy name =
        copyDir source (Path.Combine(tmp.Root, name))

    let readOnlyEtcd, readOnlyEngine = copy "e-read", copy "n-read"

    let etcdRead = EtcdPeer.read readOnlyEtcd Snapshot.zero false

    agree
        "OpenForRead + ReadAll"
        (ReadAllJson.render etcdRead)
        (ReadAllJson.render (EngineReadAll.read readOnlyEngine Wal.Snapshot.Zero false))

    let engineVerify =
        try
            WalDirectory.Verify(readOnlyEngine, Wal.Snapshot.Zero) |> ignore
            None
        with :? WalException as e ->
            Some(string e.Kind)

    // etcd 3.4's Verify skips entry and state records, so a record whose type byte (which the
    // CRC does not cover) was flipped to State passes it, though ReadAll calls the log corrupt.
    // The engine's Verify decodes states (it returns the last one, as 3.5's does) and agrees
    // with ReadAll: stricter exactly where etcd's ReadAll, once it reaches the damage, says
    // CorruptRecord. A ReadAll from the first segment may stop before the last one (at the gap
    // an install left, SliceOutOfRange), so etcd then reads again from the damaged segment's head.
    let etcdReadsTheDamageAsCorrupt () =
        etcdRead.Error = Some "CorruptRecord"
        || (let name = List.last (walFiles source |> List.filter (fun n -> n.EndsWith ".wal"))
            let index = Convert.ToUInt64(name.Substring(17, 16), 16)
            let fromTail = EtcdPeer.read (copy "e-tail") { Index = index; Term = 0UL } false
            fromTail.Error = Some "CorruptRecord")

    let etcdVerify =
        match EtcdPeer.verify readOnlyEtcd Snapshot.zero with
        | None when engineVerify = Some "CorruptRecord" && etcdReadsTheDamageAsCorrupt () -> engineVerify
        | verdict -> verdict

    agree "Verify" etcdVerify engineVerify

    let engineOpen =
        EngineReadAll.read (copy "n-open") Wal.Snapshot.Zero true
        |> EtcdPeer.asEtcdOpenReports

    agree
        "Open + ReadAll"
        (ReadAllJson.render (EtcdPeer.read (copy "e-open") Snapshot.zero true))
        (ReadAllJson.render engineOpen)

    let repairEtcd, repairEngine = copy "e-repair", copy "n-repair"

    let engineRepaired =
        try
            WalDirectory.Repair repairEngine |> ignore
            true
        with :? WalException ->
            false

    agree "Repair succeeded" (EtcdPeer.repair repairEtcd) engineRepaired
    agree "files after Repair" (walFiles repairEtcd) (walFiles repairEngine)

    agree
        "ReadAll after Repair"
        (ReadAllJson.render (EtcdPeer.read repairEtcd Snapshot.zero false))
        (ReadAllJson.render (EngineReadAll.read repairEngine Wal.Snapshot.Zero false))

/// The engine's record decoder in the peer's words.
let engineVerdict (input: byte[]) =
    let mutable t = 0L
    let mutable c = 0u
    let mutable d = ReadOnlySpan<byte>.Empty

    match Wal.Format.RecordCodec.DecodeRecord(ReadOnlySpan input, &t, &c, &d) with
    | Wal.Format.RecordParse.Ok -> $"ok {t} {c} {Convert.ToHexString(d.ToArray()).ToLowerInvariant()}"
    | Wal.Format.RecordParse.Truncated -> "truncated"
    | _ -> "invalid"

/// A message as written, or damaged once: a bit flipped, cut short, or a byte put in.
let damaged (bytes: byte[]) =
    gen {
        let! i = Gen.choose (0, max 0 (bytes.Length - 1))
        let! bit = Gen.choose (0, 7)
        let! b = Gen.choose (0, 255) |> Gen.map byte

        return!
            Gen.elements
                [
                    bytes
                    (let copy = Array.copy bytes in

                     (if copy.Length > 0 then
                          copy[i] <- copy[i] ^^^ (1uy <<< bit))

                     copy)
                    bytes[.. i - 1]
                    Array.insertAt i b bytes
                ]
    }

/// Records as etcd writes them, then damaged: a bit flipped, cut short, a byte put in.
let private damagedRecords =
    let valid =
        gen {
            let! kind = Gen.choose (0, 6)
            let! crc = ArbMap.defaults |> ArbMap.generate<uint32>

            let! data =
                Gen.choose (0, 40)
                |> Gen.bind (fun n -> Gen.arrayOfLength n (Gen.choose (0, 255) |> Gen.map byte))

            let buffer = Array.zeroCreate<byte>(64 + data.Length)

            let n =
                Wal.Format.RecordCodec.WriteRecord(
                    Span buffer,
                    LanguagePrimitives.EnumOfValue<int64, RecordType>(int64 kind),
                    crc,
                    ReadOnlySpan data,
                    ReadOnlySpan.Empty
                )

            return buffer[.. n - 1]
        }


    let random =
        Gen.choose (0, 24)
        |> Gen.bind (fun n ->
            Gen.arrayOfLength
                n
                (Gen.elements
                    [
                        0uy
                        1uy
                        8uy
                        0x10uy
                        0x1auy
                        0x7fuy
                        0x80uy
                        0xffuy
                        0x0buy
                        0x0cuy
                        0x0duy
                        0x0fuy
                    ]))

    Gen.frequency [ 3, valid |> Gen.bind damaged; 1, random ]
    |> Gen.listOfLength 200

type DamagedRecords =
    static member Inputs() =
        Arb.fromGenShrink (damagedRecords, Arb.toShrink (ArbMap.defaults |> ArbMap.arbitrary<byte[] list>))

let ``the engine's record decoder gives gogo's verdict on damaged records`` (inputs: byte[] list) =
    let etcd = EtcdPeer.records "record" inputs

    List.zip3 inputs etcd (inputs |> List.map engineVerdict)
    |> List.tryFind (fun (_, etcd, engine) -> etcd <> engine)
    |> Option.iter (fun (input, etcd, engine) ->
        failwith $"record {Convert.ToHexString input}\n  etcd:   {etcd}\n  engine: {engine}")

/// This file's tests.
let tests =
    testList
        "InteropProperties"
        [
            testPropertyWithConfig
                (fsCheck 40 [ typeof<Clean> ])
                "etcd writes, the engine reads what etcd reads, at every snapshot"
                ``etcd writes, the engine reads what etcd reads, at every snapshot``
            testPropertyWithConfig
                (fsCheck 40 [ typeof<Clean> ])
                "the engine writes, etcd reads what the model says, at every snapshot"
                ``the engine writes, etcd reads what the model says, at every snapshot``
            testPropertyWithConfig
                (fsCheck 40 [ typeof<CleanWithoutInstalls> ])
                "the same operations write the same files, byte for byte"
                ``the same operations write the same files, byte for byte``
            testPropertyWithConfig
                (fsCheck 15 [ typeof<LargeSaves> ])
                "Saves larger than etcd's page buffer cut where etcd cuts: the same files, byte for byte"
                ``the same operations write the same files, byte for byte``
            testPropertyWithConfig
                (fsCheck 100 [ typeof<Clean> ])
                "etcd and the engine classify and repair the same damage the same way"
                ``etcd and the engine classify and repair the same damage the same way``
            testPropertyWithConfig
                (fsCheck 50 [ typeof<DamagedRecords> ])
                "the engine's record decoder gives gogo's verdict on damaged records"
                ``the engine's record decoder gives gogo's verdict on damaged records``
        ]
