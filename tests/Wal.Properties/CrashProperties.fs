/// The engine across simulated power loss: every recovery gives an outcome the model allows,
/// nothing acknowledged as durable is lost, bit rot is reported rather than read, and a failed
/// fdatasync makes the log refuse every later write.
module Wal.Properties.CrashProperties

open Expecto
open FsCheck
open FsCheck.FSharp
open Wal.Model
open Wal.Simulation
open Wal.Simulation.Harness
open Wal.Simulation.BitRot
open Wal.Oracle
open Wal.Oracle.Scenarios
open Wal.Properties.Support

let private verdict (result: RunResult) =
    result.Divergence.IsNone |> Prop.label (defaultArg result.Divergence "")

/// How many mutating calls a scenario makes when nothing goes wrong.
let private mutationsOf (scenario: Scenario) =
    (run
        { defaultConfig with
            SegmentSize = scenario.SegmentSize
        }
        scenario.Steps)
        .Mutations

let ``a power cut at any call, with any crash image, recovers to an outcome the model allows``
    (scenario: Scenario)
    (point: PositiveInt)
    (image: int)
    (garbage: bool)
    =
    let crashAfter = 1 + (point.Get - 1) % mutationsOf scenario

    let result =
        run
            { defaultConfig with
                SegmentSize = scenario.SegmentSize
                CrashAfter = Some crashAfter
                CrashImage = image
                Garbage = garbage
            }
            scenario.Steps

    (result.CrashStates = 1 |> Prop.label "the power cut happened")
    .&. verdict result
    |> Prop.label $"power cut after mutating call {crashAfter}, image {image}, garbage {garbage}"

let ``recovery goes on: after power cuts between operations and inside one, the engine still matches the model``
    (scenario: Scenario)
    (point: PositiveInt)
    (image: int)
    =
    let crashAfter = 1 + (point.Get - 1) % (mutationsOf scenario + 1)

    run
        { defaultConfig with
            SegmentSize = scenario.SegmentSize
            CrashAfter = Some crashAfter
            CrashImage = image
        }
        scenario.Steps
    |> verdict
    |> Prop.label $"power cut after mutating call {crashAfter}, image {image}"

/// Type-byte flips included: each is reported, or leaves a log no checker can tell from a legal
/// one; the share of each verdict is collected (FsCheck prints it).
let ``bit rot in durable bytes is reported as a typed error, never read as entries`` (scenario: Scenario) (seed: int) =
    match rotAndRead scenario.SegmentSize scenario.Steps seed with
    | Wrong why -> false |> Prop.label why
    | verdict -> true |> Prop.collect verdict

/// How often a flipped durable bit is reported, read as written, or indistinguishable from a
/// legal log: 600 flips over generated runs, counted and printed; none may be read wrong, and
/// the second checksum must leave some flips reported that etcd's CRC alone would not.
let ``bit rot over many runs: counted by verdict, none read wrong`` () =
    let runs =
        Gen.sampleWithSeed (Rnd(7UL, 0x9E3779B97F4A7C15UL)) 30 120 (scenario false)

    let verdicts =
        [
            for i, run in Array.indexed runs do
                for seed in 1..5 do
                    rotAndRead run.SegmentSize run.Steps (i * 7919 + seed)
        ]

    let count f =
        verdicts |> List.filter f |> List.length

    printfn
        "bit rot over %d flips: %d reported, %d read as written, %d indistinguishable from a legal log"
        verdicts.Length
        (count ((=) Reported))
        (count ((=) ReadAsWritten))
        (count ((=) Indistinguishable))

    for v in verdicts do
        match v with
        | Wrong why -> failtest why
        | _ -> ()

    Expect.isGreaterThan (count ((=) Reported)) 0 "some flips are reported"

/// Every record's type byte, which etcd's CRC does not cover, retyped to each other type: each is
/// reported, read as written, or leaves a log no checker can tell from a legal one, and how
/// often each happens is printed.
let ``every record retyped: reported, or indistinguishable from a legal log`` () =
    let runs =
        Gen.sampleWithSeed (Rnd(11UL, 0x9E3779B97F4A7C15UL)) 20 12 (scenario false)

    let verdicts =
        [
            for run in runs do
                yield! retypeEach run.SegmentSize run.Steps
        ]

    let count f =
        verdicts |> List.filter (snd >> f) |> List.length

    printfn
        "retyped records: %d; %d reported, %d read as written, %d indistinguishable from a legal log"
        verdicts.Length
        (count ((=) Reported))
        (count ((=) ReadAsWritten))
        (count ((=) Indistinguishable))

    for _, v in verdicts do
        match v with
        | Wrong why -> failtest why
        | _ -> ()

    Expect.isGreaterThan (count ((=) Reported)) (verdicts.Length / 2) "most retyped records are reported"

let private faults =
    Gen.map2
        (fun call nth -> NthCall(call, nth))
        (Gen.elements [ DataSyncCall; WriteCall; PreallocateCall ])
        (Gen.choose (1, 8))
    |> Arb.fromGen

let ``after a failed fdatasync, write or fallocate no later write succeeds, and a power cut recovers to an allowed outcome``
    (scenario: Scenario)
    (image: int)
    =
    Prop.forAll faults (fun fault ->
        let operations =
            scenario.Steps
            @ [ Happen(HarnessEvent.PowerLoss(Some image)); Do(Open Snapshot.zero) ]

        run
            { defaultConfig with
                SegmentSize = scenario.SegmentSize
                Faults = [ fault ]
            }
            operations
        |> verdict
        |> Prop.label $"fault {fault}")

let ``exhaustive: every crash point of generated sequences, with every bounded crash image, is explored and counted``
    ()
    =
    let bounds =
        { Explorer.defaultBounds with
            Enumerated = 64
            Garbage = 2
        }

    let mutable total = 0

    for i in 0..4 do
        let scenario =
            (Gen.sampleWithSeed (Rnd(uint64 (1000 + i), 0x9E3779B97F4A7C15UL)) 20 1 (Scenarios.scenario false))[0]

        let states, _ = Explorer.capture scenario
        let judged, divergence = Explorer.exploreScenario bounds (1000 + i) scenario

        match divergence with
        | Some d -> failtest (string d)
        | None -> ()

        // Every captured state got at least one image, and no state was left out.
        Expect.isGreaterThanOrEqual judged (states.Length) ""
        total <- total + judged

    printfn "%s" $"exhaustive: {total} crash states explored"
    Expect.isGreaterThan total 1000 ""

let ``the explorer judges every kind of crash state: at snapshots, after a close, damaged, faulted`` () =
    let counts: int array = Array.zeroCreate Explorer.Kind.all.Length

    for i in 0..9 do
        let scenario =
            (Gen.sampleWithSeed (Rnd(uint64 (2000 + i), 0x9E3779B97F4A7C15UL)) 30 1 (Scenarios.scenario false))[0]

        let judged, divergence =
            Explorer.exploreScenarioCounted
                { Explorer.defaultBounds with
                    Enumerated = 6
                }
                (2000 + i)
                scenario

        match divergence with
        | Some d -> failtest (string d)
        | None -> ()

        for k in 0 .. counts.Length - 1 do
            counts[k] <- counts[k] + judged[k]

    for kind in Explorer.Kind.all do
        Expect.isGreaterThan counts[Explorer.Kind.index kind] 0 $"{Explorer.Kind.name kind} crash states"

/// This file's tests.
let tests =
    testList
        "CrashProperties"
        [
            testPropertyWithConfig
                (fsCheck 150 [ typeof<Clean> ])
                "a power cut at any call, with any crash image, recovers to an outcome the model allows"
                ``a power cut at any call, with any crash image, recovers to an outcome the model allows``
            testPropertyWithConfig
                (fsCheck 150 [ typeof<WithCrashes> ])
                "recovery goes on: after power cuts between operations and inside one, the engine still matches the model"
                ``recovery goes on: after power cuts between operations and inside one, the engine still matches the model``
            testPropertyWithConfig
                (fsCheck 200 [ typeof<Clean> ])
                "bit rot in durable bytes is reported as a typed error, never read as entries"
                ``bit rot in durable bytes is reported as a typed error, never read as entries``
            testCase
                "bit rot over many runs: counted by verdict, none read wrong"
                ``bit rot over many runs: counted by verdict, none read wrong``
            testCase
                "every record retyped: reported, or indistinguishable from a legal log"
                ``every record retyped: reported, or indistinguishable from a legal log``
            testPropertyWithConfig
                (fsCheck 150 [ typeof<Clean> ])
                "after a failed fdatasync, write or fallocate no later write succeeds, and a power cut recovers to an allowed outcome"
                ``after a failed fdatasync, write or fallocate no later write succeeds, and a power cut recovers to an allowed outcome``
            testCase
                "the explorer judges every kind of crash state: at snapshots, after a close, damaged, faulted"
                ``the explorer judges every kind of crash state: at snapshots, after a close, damaged, faulted``
            testCase
                "exhaustive: every crash point of generated sequences, with every bounded crash image, is explored and counted"
                ``exhaustive: every crash point of generated sequences, with every bounded crash image, is explored and counted``
        ]
