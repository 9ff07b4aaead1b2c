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

let ``bit rot in durable bytes is reported as a typed error, never read as entries`` (scenario: Scenario) (seed: int) =
    let outcome = rotAndRead scenario.SegmentSize scenario.Steps seed
    outcome.IsNone |> Prop.label (defaultArg outcome "")

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
            testPropertyWithConfig
                (fsCheck 150 [ typeof<Clean> ])
                "after a failed fdatasync, write or fallocate no later write succeeds, and a power cut recovers to an allowed outcome"
                ``after a failed fdatasync, write or fallocate no later write succeeds, and a power cut recovers to an allowed outcome``
            testCase
                "exhaustive: every crash point of generated sequences, with every bounded crash image, is explored and counted"
                ``exhaustive: every crash point of generated sequences, with every bounded crash image, is explored and counted``
        ]
