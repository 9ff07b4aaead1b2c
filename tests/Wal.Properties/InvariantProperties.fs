/// Raft's invariants as a second checksum: the engine (WalOptions.CheckRaftInvariants) and the
/// model (Wal.Model.Invariants) state the same rules, the generators keep them, a Save that breaks
/// one is refused before anything is written, and a record retyped by a flipped type byte (outside
/// etcd's CRC) is reported instead of read as an invented entry.
module Wal.Properties.InvariantProperties

open System
open Expecto
open FsCheck
open FsCheck.FSharp
open Wal
open Wal.Model
open Wal.Oracle.Scenarios
open Wal.Properties.Support

let ``generated runs keep raft's invariants`` (scenario: Scenario) =
    keepsInvariants scenario.Steps |> Prop.label (string scenario)

/// A Save near what raft would do: small terms, votes and commits, entries around the last index,
/// of any type: often breaking an invariant, often not.
let private nearbySave (records: Record list) =
    let last =
        records
        |> List.choose (function
            | EntryRecord e -> Some e.Index
            | _ -> None)
        |> List.fold max 0UL

    gen {
        let! term = Gen.choose (0, 4) |> Gen.map uint64
        let! vote = Gen.choose (0, 3) |> Gen.map uint64
        let! commit = Gen.choose (0, int last + 2) |> Gen.map uint64
        let! first = Gen.choose (max 1 (int last - 2), int last + 2) |> Gen.map uint64
        let! count = Gen.choose (0, 3)

        let! kinds =
            Gen.listOfLength count (Gen.frequency [ 6, Gen.constant 0; 1, Gen.choose (1, 4) ])

        let! terms = Gen.listOfLength count (Gen.choose (0, 4) |> Gen.map uint64)
        let! skip = Gen.frequency [ 8, Gen.constant 0UL; 1, Gen.constant 1UL ]

        let entries =
            List.zip kinds terms
            |> List.mapi (fun i (kind, t) ->
                {
                    Term = t
                    Index = first + uint64 i + (if i = count - 1 then skip else 0UL)
                    Kind = kind
                    Data = [| byte i |]
                })

        return
            {
                Term = term
                Vote = vote
                Commit = commit
            },
            entries
    }

type Case =
    {
        Steps: Step list
        Next: HardState * Entry list
    }

let private readBack (options: WalOptions) =
    use reader = WriteAheadLog.OpenForRead("/w", Wal.Snapshot.Zero, options)
    Wal.Simulation.Convert.readOutcome reader

/// One session of a generated run (its closes, reopens and crashes left out), then a Save near it.
let private cases =
    gen {
        let! scenario = scenario false

        let steps =
            scenario.Steps
            |> List.filter (function
                | Do(Create _ | Save _ | SaveSnapshot _ | Sync) -> true
                | _ -> false)

        let records =
            steps
            |> List.collect (function
                | Do op -> Stream.recordsOf op
                | Happen _ -> [])

        let! next = nearbySave records
        return { Steps = steps; Next = next }
    }

/// The engine refuses exactly the Saves the model says break an invariant (or leave a gap), and
/// a refused Save writes nothing: the log reads back as before.
let ``the engine refuses exactly the Saves the model says break an invariant, writing nothing`` (case: Case) =
    let _, options = memoryOptions 4096L
    let mutable records = []

    let wal =
        match case.Steps with
        | Do(Create m) :: _ ->
            records <- Stream.create m
            WriteAheadLog.Create("/w", ReadOnlyMemory m, options)
        | _ -> failwith "a run starts with Create"

    for step in List.tail case.Steps do
        match step with
        | Do op ->
            Wal.Simulation.Harness.perform wal op
            records <- records @ Stream.recordsOf op
        | Happen _ -> ()

    let state, entries = case.Next
    let model = Invariants.saveViolation records state entries
    let before = readBack options

    let engine =
        try
            Wal.Simulation.Harness.perform wal (Save(state, entries))
            None
        with :? WalException as e ->
            Some e.Kind

    let after = readBack options
    wal.Dispose()

    (match model, engine with
     | None, None -> true
     | Some _, Some WalErrorKind.InvalidArgument -> before = after
     | _ -> false)
    |> Prop.label $"model: {model}; engine: {engine}; save {case.Next}"

/// For FsCheck: the cases above.
type Cases =
    static member Case() = Arb.fromGen cases

/// A state record whose type byte (outside etcd's CRC) is flipped to Entry reads as an entry
/// (type = term, term = vote, index = commit): etcd invents it; the engine reports it.
let ``a state record retyped as an entry is CorruptRecord, not an invented entry`` () =
    let fs, options = memoryOptions 65536L

    do
        use wal = WriteAheadLog.Create("/w", mem "m", options)
        wal.Save(Wal.HardState(1UL, 1UL, 0UL), [ Wal.Entry(1UL, 1UL, mem "a") ])
        wal.Save(Wal.HardState(3UL, 1UL, 2UL), [ Wal.Entry(1UL, 2UL, mem "b") ])

    let path = "/w/0000000000000000-0000000000000000.wal"
    let bytes = fs.ReadAllBytes path
    let lastState = framesOf bytes |> List.filter (fun f -> f.Type = 3) |> List.last
    // The frame's 8-byte length word, then walpb.Record's field 1 (tag 0x08) holds the type.
    Expect.equal bytes[lastState.Offset + 8] 0x08uy "the type's tag"
    bytes[lastState.Offset + 9] <- 2uy
    fs.WriteAllBytes(path, bytes)

    let kind (options: WalOptions) read =
        try
            read options |> ignore
            None
        with :? WalException as e ->
            Some e.Kind

    let readAll (options: WalOptions) =
        use r = WriteAheadLog.OpenForRead("/w", Wal.Snapshot.Zero, options)
        r.ReadAll()

    Expect.equal (kind options readAll) (Some WalErrorKind.CorruptRecord) "ReadAll"

    Expect.equal
        (kind options (fun o -> WalDirectory.Verify("/w", Wal.Snapshot.Zero, o)))
        (Some WalErrorKind.CorruptRecord)
        "Verify"

    // etcd's rules read the invented entry: index 2 (the commit), term 1 (the vote), type 3 (the term).
    let etcd = readAll (lenient options)
    let invented = etcd.Entries |> Seq.last
    Expect.equal (invented.Index, invented.Term, int invented.Type) (2UL, 1UL, 3) "what etcd reads"

/// A Save breaking each invariant is refused before anything is written.
let ``each invariant refuses the Save that breaks it`` () =
    let refused (prepare: WriteAheadLog -> unit) (state: Wal.HardState) (entries: Wal.Entry list) =
        let _, options = memoryOptions 65536L
        use wal = WriteAheadLog.Create("/w", mem "m", options)
        prepare wal
        let before = readBack options

        let kind =
            try
                wal.Save(state, entries)
                None
            with :? WalException as e ->
                Some e.Kind

        Expect.equal kind (Some WalErrorKind.InvalidArgument) $"{state} {entries}"
        Expect.equal (readBack options) before "nothing written"

    let three (wal: WriteAheadLog) =
        wal.Save(Wal.HardState(2UL, 1UL, 2UL), [ for i in 1UL .. 3UL -> Wal.Entry(2UL, i, mem "x") ])

    refused ignore Wal.HardState.Empty [ Wal.Entry(1UL, 1UL, enum<EntryType> 4, mem "x") ]
    refused three Wal.HardState.Empty [ Wal.Entry(2UL, 5UL, mem "gap") ]
    refused three Wal.HardState.Empty [ Wal.Entry(3UL, 2UL, mem "over a committed entry") ]
    refused three Wal.HardState.Empty [ Wal.Entry(1UL, 4UL, mem "term going back") ]
    refused three Wal.HardState.Empty [ Wal.Entry(2UL, 4UL, mem "a"); Wal.Entry(2UL, 6UL, mem "not next") ]
    refused three (Wal.HardState(1UL, 1UL, 2UL)) []
    refused three (Wal.HardState(2UL, 3UL, 2UL)) []
    refused three (Wal.HardState(2UL, 1UL, 4UL)) []
    // And the Saves raft makes pass: an overwrite above the commit with a lower term is one.
    let _, options = memoryOptions 65536L
    use wal = WriteAheadLog.Create("/w", mem "m", options)
    three wal
    wal.Save(Wal.HardState(3UL, 0UL, 2UL), [ Wal.Entry(3UL, 4UL, mem "next term") ])
    wal.Save(Wal.HardState(4UL, 2UL, 2UL), [ Wal.Entry(3UL, 3UL, mem "overwrite above commit") ])
    wal.Save(Wal.HardState.Empty, [ Wal.Entry(4UL, 4UL, mem "bare") ])

/// etcd's ReadAll at snapshot s skips entries at or below s, so an overwrite at or below s does not
/// truncate stale entries above it. With the snapshot at the last index and stale entries above
/// it, the answer depends on the segment the read starts from: the model (the stream, as a read
/// from the first segment) returns the stale entry, and so does the engine with one segment; with
/// a segment cut after the overwrite and named at or below s, the engine, as etcd, starts there
/// and returns none. The generators never snapshot there (Scenarios.keepsInvariants).
let ``a snapshot at the last index above stale entries reads by segment layout`` () =
    let entry term index (data: byte[]) =
        {
            Term = term
            Index = index
            Kind = 0
            Data = data
        }

    let state term vote commit : HardState =
        {
            Term = term
            Vote = vote
            Commit = commit
        }

    let at: Snapshot = { Index = 2UL; Term = 2UL }

    // Entries 1-3 in term 1; two large overwrites of entry 1 in term 2 fill the first segment, so
    // the segment cut after them is named index 2; entry 2 in term 2, committed; a snapshot at 2.
    let run =
        [
            Save(state 1UL 0UL 0UL, [ for i in 1UL .. 3UL -> entry 1UL i (bytes $"t1 {i}") ])
            Save(state 2UL 0UL 0UL, [ entry 2UL 1UL (Array.zeroCreate 5000) ])
            Save(state 2UL 0UL 0UL, [ entry 2UL 1UL (Array.zeroCreate 5000) ])
            Save(state 2UL 5UL 2UL, [ entry 2UL 2UL (bytes "y") ])
            SaveSnapshot at
        ]

    let engine (segmentSize: int64) =
        let fs, options = memoryOptions segmentSize

        do
            use wal = WriteAheadLog.Create("/w", mem "m", options)
            run |> List.iter (Wal.Simulation.Harness.perform wal)

        use reader =
            WriteAheadLog.OpenForRead("/w", Wal.FSharp.ModelConvert.toSnapshot at, options)

        let entries =
            reader.ReadAll().Entries |> Seq.map (fun e -> e.Index, e.Term) |> List.ofSeq

        fs.List "/w" |> List.filter (fun f -> f.EndsWith ".wal"), entries

    match Create "m"B :: run |> List.fold Log.apply Log.empty |> Log.readAll at with
    | Read contents ->
        Expect.equal (contents.Entries |> List.map (fun e -> e.Index, e.Term)) [ 3UL, 1UL ] "the model: the stale entry"
    | other -> failwithf "the model: %A" other

    Expect.equal
        (engine 65536L)
        ([ "0000000000000000-0000000000000000.wal" ], [ 3UL, 1UL ])
        "one segment: read from the first, as the model"

    Expect.equal
        (engine 4096L)
        ([
            "0000000000000000-0000000000000000.wal"
            "0000000000000001-0000000000000002.wal"
         ],
         [])
        "a segment named 2 after the overwrites: the read starts there"

/// This file's tests.
let tests =
    testList
        "InvariantProperties"
        [
            testPropertyWithConfig
                (fsCheck 300 [ typeof<WithCrashes> ])
                "generated runs keep raft's invariants"
                ``generated runs keep raft's invariants``
            testPropertyWithConfig
                (fsCheck 300 [ typeof<Cases> ])
                "the engine refuses exactly the Saves the model says break an invariant, writing nothing"
                ``the engine refuses exactly the Saves the model says break an invariant, writing nothing``
            testCase
                "a state record retyped as an entry is CorruptRecord, not an invented entry"
                ``a state record retyped as an entry is CorruptRecord, not an invented entry``
            testCase "each invariant refuses the Save that breaks it" ``each invariant refuses the Save that breaks it``
            testCase
                "a snapshot at the last index above stale entries reads by segment layout"
                ``a snapshot at the last index above stale entries reads by segment layout``
        ]
