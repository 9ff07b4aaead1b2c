/// The engine against the model, without crashes: for any raft-like sequence of operations,
/// every ReadAll the engine gives equals the model's, error kinds included.
module Wal.Properties.ModelProperties

open Expecto
open System
open FsCheck
open FsCheck.FSharp
open Wal
open Wal.Model
open Wal.Properties.Support
open Wal.Oracle.Scenarios

/// Runs a scenario on the engine and the model; returns the first disagreement, if any.
let runOn (fs: Wal.Simulation.SimulatedFileSystem, options: WalOptions) (scenario: Scenario) : string option =
    let dir = "/data/wal"
    let mutable wal: WriteAheadLog = null
    let mutable log = Log.empty
    let mutable divergence = None

    let compare (at: Wal.Model.Snapshot) where =
        let engine = Wal.Simulation.Convert.readOutcome wal
        let model = Log.readAll at log
        // Where the segments start is the engine's choice; the model allows each layout's read.
        let allowed = Stream.readsAt at log.Records

        if
            divergence.IsNone
            && not (allowed |> List.exists (fun m -> engine = Wal.Simulation.Convert.Model m))
        then
            let shown =
                match engine with
                | Wal.Simulation.Convert.Model outcome -> ReadOutcome.describe outcome
                | Wal.Simulation.Convert.OtherError(kind, _) -> $"{kind}"

            divergence <- Some $"{where}:\n  engine: {shown}\n  model:  {ReadOutcome.describe model}"

    for step in scenario.Steps do
        if divergence.IsNone then
            match step with
            | Do(Create metadata) -> wal <- WriteAheadLog.Create(dir, ReadOnlyMemory metadata, options)
            | Do(Save _ | SaveSnapshot _ | Sync | ReleaseLockTo _ as op) -> Wal.Simulation.Harness.perform wal op
            | Happen _ -> failwith "scenarios without power cuts hold no power loss"
            | Do(OpenForRead at as op) ->
                use reader =
                    WriteAheadLog.OpenForRead(dir, Wal.FSharp.ModelConvert.toSnapshot at, options)

                let engine = Wal.Simulation.Convert.readOutcome reader
                // Buffered commit-only saves are not visible to a second reader; every earlier state is.
                let prefixes =
                    [
                        for k in 0 .. log.Records.Length do
                            yield! Stream.readsAt at (List.take k log.Records)
                    ]

                if
                    divergence.IsNone
                    && not (prefixes |> List.exists (fun m -> engine = Wal.Simulation.Convert.Model m))
                then
                    divergence <- Some $"{Operation.describe op}: engine {engine}"
            | Do Close -> wal.Dispose()
            | Do Repair ->
                if WalDirectory.Repair(dir, options) <> RepairOutcome.NothingToRepair then
                    divergence <- Some "Repair found something to cut in a cleanly closed log"
            | Do(Open at as op) ->
                wal <- WriteAheadLog.Open(dir, Wal.FSharp.ModelConvert.toSnapshot at, options)
                compare at (Operation.describe op)

            step |> Step.operation |> Option.iter (fun op -> log <- Log.apply log op)

    if divergence.IsNone then
        wal.Dispose()

        for at in
            Snapshot.zero
            :: (log.Records
                |> List.choose (function
                    | SnapshotRecord s -> Some s
                    | _ -> None)) do
            wal <- WriteAheadLog.OpenForRead(dir, Wal.FSharp.ModelConvert.toSnapshot at, options)
            compare at $"final read at {at.Index}/{at.Term}"
            wal.Dispose()

    divergence

let run (scenario: Scenario) =
    runOn (memoryOptions scenario.SegmentSize) scenario

let ``the engine's ReadAll equals the model's for any raft-like sequence`` (scenario: Scenario) =
    let outcome = run scenario
    outcome.IsNone |> Prop.label (defaultArg outcome "")

let ``with 512-byte segments the engine cuts, names segments in sequence, and the model still agrees``
    (scenario: Scenario)
    =
    let scenario = { scenario with SegmentSize = 512L }
    let fs, options = memoryOptions 512L
    let outcome = runOn (fs, options) scenario
    let segments = fs.List "/data/wal" |> List.filter (fun n -> n.EndsWith ".wal")

    let written =
        scenario.Steps
        |> List.sumBy (function
            | Do(Save(_, es)) -> es.Length
            | _ -> 0)

    let sequences =
        segments |> List.map (fun n -> Convert.ToUInt64(n.Substring(0, 16), 16))

    (outcome.IsNone
     && sequences = [ 0UL .. uint64 segments.Length - 1UL ]
     && (written < 10 || segments.Length > 1))
    |> Prop.label $"{outcome}; segments {segments}"

let private entry (index: uint64) =
    {
        Term = 2UL
        Index = index
        Kind = 0
        Data = [| byte index |]
    }

let private state (commit: uint64) =
    {
        Term = 2UL
        Vote = 0UL
        Commit = commit
    }

/// Entries 1-8, an overwrite at 5, then 6 and 7: entry 8 is stale.
let private overwritten =
    Stream.create [| 1uy |]
    @ Stream.save (state 0UL) [ for i in 1UL .. 8UL -> entry i ]
    @ Stream.save (state 4UL) [ entry 5UL ]
    @ Stream.save (state 6UL) [ entry 6UL; entry 7UL ]

let ``a read at a snapshot may start at a later segment and miss entries an overwrite made stale`` () =
    let at = { Index = 7UL; Term = 2UL }

    let entriesOf outcome =
        match outcome with
        | NotFound c -> c.Entries |> List.map _.Index
        | other -> failtest $"{other}"

    // From the first segment, as etcd reads it: the overwrite at 5 is below the snapshot and
    // ignored, so the stale 8 is read. From a segment cut after the overwrite (named 6), it is not.
    Expect.equal (entriesOf (Stream.readAll at overwritten)) [ 8UL ] "from the first record"

    Expect.equal (Stream.readsAt at overwritten |> List.map entriesOf |> List.sort) [ []; [ 8UL ] ] "both layouts"

    for outcome in Stream.readsAt at overwritten do
        match outcome with
        | NotFound c -> Expect.equal c.State (state 6UL) "the header carries the last hard state"
        | _ -> ()

    // Reading from the start, or at a snapshot nothing stale lies past, has one outcome.
    Expect.equal (Stream.readsAt Snapshot.zero overwritten) [ Stream.readAll Snapshot.zero overwritten ] "at zero"

    let withSnapshot = overwritten @ [ SnapshotRecord at ]
    Expect.equal (Stream.readsAt at withSnapshot).Length 2 "the snapshot record after the cut is read either way"

/// This file's tests.
let tests =
    testList
        "ModelProperties"
        [
            testCase
                "a read at a snapshot may start at a later segment and miss entries an overwrite made stale"
                ``a read at a snapshot may start at a later segment and miss entries an overwrite made stale``
            testPropertyWithConfig
                (fsCheck 200 [ typeof<Clean> ])
                "the engine's ReadAll equals the model's for any raft-like sequence"
                ``the engine's ReadAll equals the model's for any raft-like sequence``
            testPropertyWithConfig
                (fsCheck 50 [ typeof<Clean> ])
                "with 512-byte segments the engine cuts, names segments in sequence, and the model still agrees"
                ``with 512-byte segments the engine cuts, names segments in sequence, and the model still agrees``
        ]
