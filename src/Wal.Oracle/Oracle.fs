/// The model as an oracle for any WAL implementation in process: describe the implementation
/// as an `Adapter` (a record of functions), and `Oracle.check` drives it through generated
/// raft-like operation sequences, with power cuts when the adapter can take them, judging every
/// read against the model. A failure comes back shrunk, as a trace (Wal.Oracle.Trace) with what
/// the implementation returned, and the seed that replays it.
module Wal.Oracle.Oracle

open System
open FsCheck
open FsCheck.FSharp
open Wal.Model
open Wal.Oracle.Trace

/// Raised by an adapter's OpenAndReadAll for an error the model does not know; the kind is
/// what the trace shows (`error CrcMismatch`).
exception ReadFailed of kind: string

/// A WAL implementation as the oracle drives it. Each function acts on the log of the storage
/// `Reset` made last; all but OpenAndReadAll are acknowledged when they return.
type Adapter =
    {
        /// A name for reports.
        Name: string
        /// Starts over with fresh, empty storage (and no open log).
        Reset: unit -> unit
        /// Creates the log with this metadata and leaves it open for appending.
        Create: byte[] -> unit
        /// Appends entries then the hard state (etcd's Save).
        Save: HardState -> Entry list -> unit
        /// Records a snapshot marker; durable when it returns.
        SaveSnapshot: Snapshot -> unit
        /// Makes everything written durable.
        Sync: unit -> unit
        /// etcd's ReleaseLockTo; an implementation without locks can ignore it.
        ReleaseLockTo: uint64 -> unit
        /// Closes the log cleanly (durably).
        Close: unit -> unit
        /// Opens the log at the snapshot for appending (recovering as it would after a crash)
        /// and reads it all. Errors the model knows are outcomes (`Failed SnapshotMismatch`,
        /// `NoLog` when there is no log); raise ReadFailed for the others.
        OpenAndReadAll: Snapshot -> ReadOutcome
        /// Cuts the power now: whatever was not made durable may be lost, `image` choosing what
        /// survives; the log is then closed, as after a reboot. None when the implementation
        /// cannot be crashed: the oracle then runs without power cuts.
        PowerCut: (int -> unit) option
    }

/// How hard to look.
type Config =
    {
        /// Sequences to try.
        Tests: int
        /// The seed of the first sequence; a report's seed replays it.
        Seed: int
        /// Moves per sequence, at most (a move is an operation, or a close or power loss with
        /// the open after it).
        MaxOperations: int
        /// Which Saves must be durable: raft's contract unless the implementation promises etcd's exact rule.
        Rule: DurabilityRule
    }

[<RequireQualifiedAccess>]
module Config =
    /// 100 sequences of up to 40 operations, from seed 1, judged by raft's contract.
    let standard =
        {
            Tests = 100
            Seed = 1
            MaxOperations = 40
            Rule = DurabilityRule.RaftContract
        }

    /// `standard` judged by etcd 3.4's exact durability rule, as the engine's own suites are.
    let etcdExact =
        { standard with
            Rule = DurabilityRule.EtcdExact
        }

/// A failure, shrunk: the trace of what the implementation was asked and returned, up to the
/// first step the model does not allow. FSI shows it as text.
[<StructuredFormatDisplay("{Summary}")>]
type Counterexample =
    {
        /// The trace (the trace language), observations included.
        Trace: string
        /// Why the model rejects it.
        Reason: string
        /// The seed that generates the original sequence: `{ config with Seed = seed; Tests = 1 }` reruns it.
        Seed: int
        /// Moves in the original and the shrunk sequence.
        Original: int
        Shrunk: int
    }

    /// The reason, then the trace.
    member this.Summary =
        $"{this.Reason}\n\ntrace (shrunk from {this.Original} to {this.Shrunk} operations; seed {this.Seed}):\n{this.Trace}"

    override this.ToString() = this.Summary

/// What `check` found. FSI shows it as text.
[<StructuredFormatDisplay("{Summary}")>]
type Report =
    | Passed of adapter: string * tests: int
    | Falsified of adapter: string * Counterexample

    /// One line when passed; the counterexample when not.
    member this.Summary =
        match this with
        | Passed(name, tests) -> $"{name}: passed {tests} sequences"
        | Falsified(name, c) -> $"{name}: FALSIFIED\n{c.Summary}"

    override this.ToString() = this.Summary

/// What an open of the log at `at` observed: the outcome, or the error it raised.
let observe (adapter: Adapter) (at: Snapshot) =
    try
        Saw(adapter.OpenAndReadAll at)
    with
    | ReadFailed kind -> SawError kind
    | ex -> SawError(ex.GetType().Name + ": " + ex.Message.Replace('\n', ' '))

/// What running one step on the adapter observed: for an open, what it read.
let perform (adapter: Adapter) (step: Step) : Observation option =
    match step with
    | Do(Create m) ->
        adapter.Create m
        None
    | Do(Save(s, es)) ->
        adapter.Save s es
        None
    | Do(SaveSnapshot s) ->
        adapter.SaveSnapshot s
        None
    | Do Sync ->
        adapter.Sync()
        None
    | Do(ReleaseLockTo i) ->
        adapter.ReleaseLockTo i
        None
    | Do Close ->
        adapter.Close()
        None
    | Do(Open at) -> Some(observe adapter at)
    | Do(OpenForRead _ | Repair) -> None
    | Happen(PowerLoss image) ->
        match adapter.PowerCut with
        | Some cut ->
            cut (defaultArg image 0)
            None
        | None -> invalidOp $"{adapter.Name} cannot take a power cut"

/// Runs steps on the adapter (from fresh storage) and returns them as trace lines with what it
/// observed at every open. A step that raises ends the run; its message comes back too.
let run (adapter: Adapter) (steps: Step list) : Line list * string option =
    adapter.Reset()

    let rec go (number: int) (steps: Step list) (lines: Line list) =
        match steps with
        | [] -> List.rev lines, None
        | step :: rest ->
            let line observed =
                {
                    Number = number
                    Step = step
                    Observed = observed
                }

            match
                (try
                    Ok(perform adapter step)
                 with ex ->
                     Error ex)
            with
            | Ok observed -> go (number + 1) rest (line observed :: lines)
            | Error ex ->
                List.rev (line None :: lines),
                Some $"line {number} ({printStep step None}) raised {ex.GetType().Name}: {ex.Message}"

    go 1 steps []

/// The steps the oracle runs for a generated sequence: those the trace language holds, then a
/// clean close and a full read, which every run must end with.
let stepsFor (steps: Step list) =
    let at = steps |> List.choose Step.operation |> Stream.installedBy

    (steps |> List.filter holds) @ [ Do Close; Do(Open at) ]

/// Runs the steps and judges them: None, or why the model rejects what was observed (and the trace).
let judge (rule: DurabilityRule) (adapter: Adapter) (steps: Step list) : (string * string) option =
    let lines, failure = run adapter (stepsFor steps)
    let trace = printLines lines

    match failure with
    | Some message -> Some(message, trace)
    | None ->
        match checkWith rule lines with
        | Allowed _ -> None
        | Violated violation ->
            let upTo =
                match violation with
                | Disallowed(line, _, _)
                | Misplaced(line, _) -> line

            let shown = lines |> List.filter (fun l -> l.Number <= upTo) |> printLines

            let reason =
                match violation with
                | Disallowed(line, observed, allowed) -> ReadDiff.explain line observed allowed
                | Misplaced _ -> describe (Violated violation)

            Some(reason, shown)

/// Smaller payloads for one step: the metadata or one entry's data emptied, or halved.
let private smallerPayloads (step: Step) : Step seq =
    let shorter (bytes: byte[]) =
        if bytes.Length = 0 then []
        elif bytes.Length = 1 then [ [||] ]
        else [ [||]; bytes[.. bytes.Length / 2 - 1] ]

    match step with
    | Do(Create m) -> shorter m |> Seq.map (Create >> Do)
    | Do(Save(state, entries)) ->
        seq {
            for i, e in List.indexed entries do
                for data in shorter e.Data do
                    Do(Save(state, List.updateAt i { e with Data = data } entries))
        }
    | _ -> Seq.empty

/// The candidates one shrinking step tries: each move (never the Create) dropped, last first;
/// then each payload shortened. A candidate raft could not make (one that breaks raft's
/// invariants, such as a gap left by a dropped Save) is not tried.
let shrinkCandidates (moves: Step list list) : Step list list seq =
    match moves with
    | create :: rest ->
        seq {
            for i in rest.Length - 1 .. -1 .. 0 do
                let candidate = create :: List.removeAt i rest

                if Scenarios.keepsInvariants (List.concat candidate) then
                    candidate

            for m, move in List.indexed moves do
                for s, step in List.indexed move do
                    for smaller in smallerPayloads step do
                        List.updateAt m (List.updateAt s smaller move) moves
        }
    | [] -> Seq.empty

/// Shrinks while `fails` still finds a failure: moves dropped, then payloads shortened.
let shrinkWith (fails: Step list -> 'failure option) (moves: Step list list) (firstFailure: 'failure) =
    let rec go (moves: Step list list) failure =
        match
            shrinkCandidates moves
            |> Seq.tryPick (fun candidate -> fails (List.concat candidate) |> Option.map (fun f -> candidate, f))
        with
        | Some(candidate, f) -> go candidate f
        | None -> moves, failure

    go moves firstFailure

let private shrink rule (adapter: Adapter) (moves: Step list list) (firstFailure: string * string) =
    shrinkWith (judge rule adapter) moves firstFailure

/// The `i`th generated sequence of a run (with power cuts when `crashes`), asking only for what
/// `supports` lists, and its seed: from the seed alone, so that a report's seed with Tests = 1
/// replays it.
let sequenceSupporting (supports: Scenarios.Supports) (config: Config) (crashes: bool) (i: int) =
    let seed = config.Seed + i

    let size =
        3
        + (seed * 7919 % max 1 (config.MaxOperations - 2)
           + max 1 (config.MaxOperations - 2))
            %
            max 1 (config.MaxOperations - 2)

    let steps =
        Gen.sampleWithSeed (Rnd(uint64 seed, 0x9E3779B97F4A7C15UL)) size 1 (Scenarios.stepsSupporting supports crashes)

    seed, steps[0]

/// The `i`th generated sequence of a run that may ask for everything; see `sequenceSupporting`.
let sequence (config: Config) (crashes: bool) (i: int) =
    sequenceSupporting Scenarios.Supports.all config crashes i

/// `check` with sequences that ask only for what `supports` lists (a driver's `supports`).
let checkSupporting (supports: Scenarios.Supports) (adapter: Adapter) (config: Config) : Report =
    let sequence = sequenceSupporting supports config adapter.PowerCut.IsSome

    let rec search i =
        if i >= config.Tests then
            Passed(adapter.Name, config.Tests)
        else
            let seed, steps = sequence i

            match judge config.Rule adapter steps with
            | None -> search (i + 1)
            | Some failure ->
                let moves = Scenarios.moves steps
                let shrunk, (reason, trace) = shrink config.Rule adapter moves failure

                Falsified(
                    adapter.Name,
                    {
                        Trace = trace
                        Reason = reason
                        Seed = seed
                        Original = moves.Length
                        Shrunk = shrunk.Length
                    }
                )

    search 0

/// Drives the adapter through `config.Tests` generated sequences (with power cuts when it has a
/// PowerCut) and judges every read against the model. Deterministic for a seed.
let check (adapter: Adapter) (config: Config) : Report =
    checkSupporting Scenarios.Supports.all adapter config
