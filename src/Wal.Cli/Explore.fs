/// `wal explore`: the crash-state explorer, the repository's main job.
module Wal.Cli.Explore

open System
open Argu
open Wal.Simulation

type ExploreArgs =
    | [<Unique>] States of count: int
    | [<Unique>] Seed of seed: int
    | [<Unique>] Threads of count: int
    | [<Unique>] Images_Per_State of count: int

    interface IArgParserTemplate with
        member this.Usage =
            match this with
            | States _ -> "crash states to explore (default 1,000,000)."
            | Seed _ -> "seed of the first generated sequence; the same seed explores the same states (default 1)."
            | Threads _ -> "worker threads (default: the number of cores)."
            | Images_Per_State _ -> "enumerated crash images per captured state (default 24)."

/// Runs the explorer and prints its summary; the exit code is 1 on any divergence.
let run (args: ParseResults<ExploreArgs>) =
    let budget = args.GetResult(States, defaultValue = 1_000_000)
    let seed = args.GetResult(Seed, defaultValue = 1)
    let threads = args.GetResult(Threads, defaultValue = Environment.ProcessorCount)

    let bounds =
        { Explorer.defaultBounds with
            Enumerated = args.GetResult(Images_Per_State, defaultValue = Explorer.defaultBounds.Enumerated)
        }

    if budget < 1 || threads < 1 || bounds.Enumerated < 1 then
        eprintfn "wal explore: --states, --threads and --images-per-state must be at least 1"
        2
    else
        printfn
            "exploring %d crash states on %d threads (seed %d; per state %d enumerated images, %d reordered per file, %d garbage, every other one recovered at a saved snapshot; %d damaged per state; %d faulted runs per sequence, %d images per state after the fault)"
            budget
            threads
            seed
            bounds.Enumerated
            bounds.Reorderings
            bounds.Garbage
            bounds.Damaged
            bounds.FaultRuns
            bounds.FaultImages

        let summary =
            Explorer.explore budget seed threads bounds (fun sequences states ->
                if sequences % 500 = 0 then
                    printfn "  %d sequences, %d crash states" sequences states)

        printfn "sequences:     %d" summary.Sequences

        let kinds =
            Explorer.Kind.all
            |> List.map (fun k -> $"{Explorer.Kind.name k} {summary.ByKind[Explorer.Kind.index k]:N0}")
            |> String.concat ", "

        printfn "crash states:  %d (%s)" summary.CrashStates kinds
        printfn "states/second: %.0f" summary.StatesPerSecond
        printfn "elapsed:       %.1f s" summary.Elapsed.TotalSeconds
        printfn "divergences:   %d" summary.Divergences

        match summary.First with
        | Some divergence ->
            printfn "\nshrunk counterexample (reproduce with: wal explore --seed %d):\n%O" summary.Seed divergence
            1
        | None -> 0
