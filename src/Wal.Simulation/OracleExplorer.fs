/// The crash-state explorer for any implementation on the simulated disk: Oracle.check's
/// sequences and model, with the crash images enumerated as Explorer does (every mutating call,
/// CrashImage.enumerate of the disk after it) rather than one random image per power cut.
///
/// It lives here, not in Wal.Oracle, because enumerating needs the disk (Wal.Simulation
/// references Wal.Oracle, not the other way): the adapter's storage is a SimulatedStorage, whose
/// one file system reports every mutating call and takes any crash image back (Restore).
module Wal.Simulation.OracleExplorer

open System
open System.Diagnostics
open Wal.Model
open Wal.Oracle
open Wal.Oracle.Trace

/// How much to explore per captured disk state.
type Bounds =
    {
        /// Crash images enumerated (each namespace prefix, each file's change prefix and torn
        /// sectors), at most this many per state.
        Enumerated: int
        /// Random sector reorderings per file, added to the enumeration.
        Reorderings: int
    }

/// Explorer's enumeration: 24 images per state, one reordering per file.
let defaultBounds = { Enumerated = 24; Reorderings = 1 }

/// What an exploration did. FSI shows it as text.
[<StructuredFormatDisplay("{Summary}")>]
type Report =
    {
        Adapter: string
        Sequences: int
        /// Crash images recovered from and judged.
        CrashStates: int
        Elapsed: TimeSpan
        /// The first divergence found, shrunk.
        Counterexample: Oracle.Counterexample option
    }

    /// 0 or 1: the exploration stops at the first.
    member this.Divergences = if this.Counterexample.IsSome then 1 else 0

    /// Crash states judged per second.
    member this.StatesPerSecond =
        float this.CrashStates / max this.Elapsed.TotalSeconds 1e-9

    /// The figures, then the counterexample if any.
    member this.Summary =
        let figures =
            $"{this.Adapter}: {this.Sequences} sequences, {this.CrashStates} crash states ({this.StatesPerSecond:F0}/s), {this.Divergences} divergences"

        match this.Counterexample with
        | None -> figures
        | Some c -> $"{figures}\nFALSIFIED\n{c.Summary}"

    override this.ToString() = this.Summary

/// A disk state captured after a mutating call, with what the model allows if the power went then.
type private Captured =
    {
        Disk: DiskState
        Model: DurableLog
        /// Trace lines completed before the call (the step in flight is the next).
        Done: int
        InFlight: Step
    }

/// The model after a step, as Trace.check moves it.
let private next (model: DurableLog) (step: Step) (observed: Observation option) =
    match step, observed with
    | Do Close, _ -> Durability.synced model
    | Do(Open at), Some(Saw o) -> Durability.recovered at o model |> Option.defaultValue model
    | Do(Open _ | OpenForRead _ | Repair), _ -> model
    | Do op, _ -> Durability.acknowledged model op
    | Happen _, _ -> model

/// Runs the steps once from fresh storage, capturing the disk after every mutating call.
let private capture rule (storage: SimulatedStorage) (adapter: Oracle.Adapter) (steps: Step list) =
    let states = ResizeArray<Captured>()
    let lines = ResizeArray<Line>()
    let mutable model = Durability.empty rule
    let mutable inFlight = (Durability.empty rule, Happen(PowerLoss None))

    adapter.Reset()

    storage.FileSystem.Observe <-
        Some(fun _ disk ->
            states.Add
                {
                    Disk = disk
                    Model = fst inFlight
                    Done = lines.Count
                    InFlight = snd inFlight
                })

    try
        let rec go (steps: Step list) =
            match steps with
            | [] -> ()
            | step :: rest ->
                inFlight <-
                    (match step with
                     | Do op -> Durability.interrupted model op
                     | Happen _ -> model),
                    step

                // A raising step ends the run; Oracle.judge reports it, this run only captures.
                match
                    (try
                        Some(Oracle.perform adapter step)
                     with _ ->
                         None)
                with
                | Some observed ->
                    lines.Add
                        {
                            Number = lines.Count + 1
                            Step = step
                            Observed = observed
                        }

                    model <- next model step observed
                    go rest
                | None -> ()

        go steps
    finally
        storage.FileSystem.Observe <- None

    List.ofSeq states, List.ofSeq lines

/// The one save recovery must go on with (as Explorer's): an entry after the last one read, a
/// later term. `wal crash-test` sends the same save to a driver.
let onwards (contents: Contents) =
    let last =
        contents.Entries
        |> List.tryLast
        |> Option.map _.Index
        |> Option.defaultValue 0UL
        // A commit may rest on a snapshot installed past the entries.
        |> max contents.State.Commit

    let state =
        {
            Term = 1000UL
            Vote = 1UL
            Commit = last
        }

    state,
    [
        {
            Term = 1000UL
            Index = last + 1UL
            Kind = 0
            Data = Array.create 100 0x5Auy
        }
    ]

/// Recovers from one crash image of a captured state and judges it; then, as recovery must go
/// on, saves one more entry, closes, reopens and judges that read too. None when the model
/// allows all; else why not, with the trace lines after the captured prefix.
let private judgeImage
    (storage: SimulatedStorage)
    (adapter: Oracle.Adapter)
    (captured: Captured)
    (image: CrashImage)
    : (string * Line list) option =
    storage.Restore(CrashImage.crash captured.Disk image)
    // The restored disk has nothing pending, so this cut keeps it whole: it only tells the
    // implementation the power went (its memory is gone).
    adapter.PowerCut |> Option.iter (fun cut -> cut 0)

    let mutable number = captured.Done

    let line step observed =
        number <- number + 1

        {
            Number = number
            Step = step
            Observed = observed
        }

    let crash = line (Happen(PowerLoss None)) None
    let observed = Oracle.observe adapter Snapshot.zero
    let read = line (Do(Open Snapshot.zero)) (Some observed)
    let allowed = Durability.allowedAfterCrash Snapshot.zero captured.Model

    let disallowed (l: Line) observed allowed =
        ReadDiff.explain l.Number observed allowed

    match observed with
    | Saw outcome when List.contains outcome allowed ->
        match Durability.recovered Snapshot.zero outcome captured.Model, outcome with
        | None, _ -> Some($"line {read.Number}: no candidate explains the read", [ crash; read ])
        | Some recovered, (Read contents | NotFound contents) ->
            let state, entries = onwards contents
            let save = line (Do(Save(state, entries))) None
            let close = line (Do Close) None

            match
                (try
                    adapter.Save state entries
                    adapter.Close()
                    None
                 with ex ->
                     Some
                         $"after recovering, saving entry {(List.head entries).Index} raised {ex.GetType().Name}: {ex.Message}")
            with
            | Some message -> Some(message, [ crash; read; save; close ])
            | None ->
                let after =
                    Durability.acknowledged recovered (Save(state, entries)) |> Durability.synced

                let reread = Oracle.observe adapter Snapshot.zero
                let again = line (Do(Open Snapshot.zero)) (Some reread)
                let allowedAfter = Durability.allowedAfterCrash Snapshot.zero after

                match reread with
                | Saw o when List.contains o allowedAfter -> None
                | _ -> Some(disallowed again reread allowedAfter, [ crash; read; save; close; again ])
        | Some _, _ -> None
    | _ -> Some(disallowed read observed allowed, [ crash; read ])

/// Explores every captured crash state of one sequence; returns how many images were judged
/// and the first divergence (why, and the trace).
let private exploreSteps rule (bounds: Bounds) (storage: SimulatedStorage) (adapter: Oracle.Adapter) (seed: int) steps =
    match Oracle.judge rule adapter steps with
    | Some failure -> 0, Some failure
    | None ->
        let states, lines = capture rule storage adapter (Oracle.stepsFor steps)
        let mutable judged = 0
        let mutable found = None

        states
        |> List.iteri (fun i captured ->
            if found.IsNone then
                for image in CrashImage.enumerate captured.Disk bounds.Reorderings bounds.Enumerated (seed + i) do
                    if found.IsNone then
                        judged <- judged + 1

                        match judgeImage storage adapter captured image with
                        | None -> ()
                        | Some(reason, after) ->
                            let before = lines |> List.take captured.Done

                            let cut =
                                $"# the power went inside `{printStep captured.InFlight None}` (mutating call {i + 1}), crash image {image}"
                                    .Replace('\n', ' ')

                            let trace =
                                [ printLines before; cut; printLines after ]
                                |> List.map (fun part -> part.Trim('\n'))
                                |> List.filter (String.IsNullOrEmpty >> not)
                                |> String.concat "\n"

                            found <- Some(reason, trace))

        judged, found

/// Drives the adapter through `config.Tests` generated sequences, as Oracle.check does, and for
/// each recovers from the crash images of the disk after every mutating call, judging each
/// recovery (and one save, close and reopen after it) against the model. `storage` must be the
/// one the adapter does its I/O on, and the adapter must take power cuts. Stops at the first
/// divergence and shrinks it; deterministic for a seed.
let exploreWithin (bounds: Bounds) (storage: SimulatedStorage) (adapter: Oracle.Adapter) (config: Oracle.Config) =
    if adapter.PowerCut.IsNone then
        invalidArg "adapter" $"{adapter.Name} cannot take a power cut, so it has no crash states to explore"

    let clock = Stopwatch.StartNew()
    let mutable states = 0

    let rec search i =
        if i >= config.Tests then
            i, None
        else
            let seed, steps = Oracle.sequence config true i
            let judged, found = exploreSteps config.Rule bounds storage adapter seed steps
            states <- states + judged

            match found with
            | None -> search (i + 1)
            | Some failure -> i + 1, Some(seed, steps, failure)

    let sequences, found = search 0
    // The figures are the search's; shrinking explores again, and is not counted.
    let elapsed = clock.Elapsed

    let counterexample =
        found
        |> Option.map (fun (seed, steps, failure) ->
            let moves = Scenarios.moves steps

            // Drops moves, then shortens payloads, while some crash state still diverges.
            let shrunk, (reason, trace) =
                Oracle.shrinkWith (exploreSteps config.Rule bounds storage adapter seed >> snd) moves failure

            let c: Oracle.Counterexample =
                {
                    Trace = trace
                    Reason = reason
                    Seed = seed
                    Original = moves.Length
                    Shrunk = shrunk.Length
                }

            c)

    {
        Adapter = adapter.Name
        Sequences = sequences
        CrashStates = states
        Elapsed = elapsed
        Counterexample = counterexample
    }

/// exploreWithin the default bounds.
let explore (storage: SimulatedStorage) (adapter: Oracle.Adapter) (config: Oracle.Config) =
    exploreWithin defaultBounds storage adapter config
