/// The model as an oracle for any WAL implementation in process: describe the implementation
/// as an `Adapter` (a record of functions), and `Oracle.check` drives it through generated
/// raft-like operation sequences, with power cuts when the adapter can take them, judging every
/// read against the model. A failure comes back shrunk, as a trace (Wal.Model.Trace) with what
/// the implementation returned, and the seed that replays it.
module Wal.Model.Oracle

open System
open FsCheck
open FsCheck.FSharp
open Wal.Model.Trace

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
        /// Operations per sequence, at most.
        MaxOperations: int
    }

[<RequireQualifiedAccess>]
module Config =
    /// 100 sequences of up to 40 operations, from seed 1.
    let standard =
        {
            Tests = 100
            Seed = 1
            MaxOperations = 40
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
        /// Operations in the original and the shrunk sequence.
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

let private observe (adapter: Adapter) (at: Snapshot) =
    try
        Saw(adapter.OpenAndReadAll at)
    with
    | ReadFailed kind -> SawError kind
    | ex -> SawError(ex.GetType().Name + ": " + ex.Message.Replace('\n', ' '))

/// Runs trace steps on the adapter (from fresh storage) and returns them with what it observed
/// at every open. An operation that raises ends the run; its message comes back too.
let run (adapter: Adapter) (steps: Step list) : Line list * string option =
    adapter.Reset()
    let lines = ResizeArray<Line>()
    let mutable failure = None

    for number, step in List.indexed steps do
        if failure.IsNone then
            try
                let recorded =
                    match step with
                    | Do(Create m) ->
                        adapter.Create m
                        step
                    | Do(Save(s, es)) ->
                        adapter.Save s es
                        step
                    | Do(SaveSnapshot s) ->
                        adapter.SaveSnapshot s
                        step
                    | Do Sync ->
                        adapter.Sync()
                        step
                    | Do(ReleaseLockTo i) ->
                        adapter.ReleaseLockTo i
                        step
                    | Do _ -> step
                    | Close ->
                        adapter.Close()
                        step
                    | PowerLoss image ->
                        match adapter.PowerCut with
                        | Some cut ->
                            cut (defaultArg image 0)
                            step
                        | None -> invalidOp $"{adapter.Name} cannot take a power cut"
                    | Open(at, _) -> Open(at, Some(observe adapter at))

                lines.Add { Number = number + 1; Step = recorded }
            with ex ->
                lines.Add { Number = number + 1; Step = step }
                failure <- Some $"line {number + 1} ({printStep step}) raised {ex.GetType().Name}: {ex.Message}"

    List.ofSeq lines, failure

/// The steps the oracle runs for a generated sequence: its operations, then a clean close and
/// a full read, which every run must end with.
let stepsFor (operations: Operation list) =
    (operations |> List.collect stepsOf) @ [ Close; Open(Snapshot.zero, None) ]

/// Runs the operations and judges them: None, or why the model rejects what was observed (and the trace).
let judge (adapter: Adapter) (operations: Operation list) : (string * string) option =
    let lines, failure = run adapter (stepsFor operations)
    let trace = print (lines |> List.map (fun l -> l.Step))

    match failure with
    | Some message -> Some(message, trace)
    | None ->
        match check lines with
        | Allowed _ -> None
        | Violated violation ->
            let upTo =
                match violation with
                | Disallowed(line, _, _)
                | Misplaced(line, _) -> line

            let shown =
                lines
                |> List.filter (fun l -> l.Number <= upTo)
                |> List.map (fun l -> l.Step)
                |> print

            Some(describe (Violated violation), shown)

/// Drops one operation (never the Create) at a time, as long as the run still fails.
let private shrink (adapter: Adapter) (operations: Operation list) (firstFailure: string * string) =
    let rec go (ops: Operation list) failure =
        let smaller =
            match ops with
            | create :: rest ->
                seq {
                    for i in rest.Length - 1 .. -1 .. 0 do
                        create :: List.removeAt i rest
                }
            | [] -> Seq.empty

        match
            smaller
            |> Seq.tryPick (fun candidate -> judge adapter candidate |> Option.map (fun f -> candidate, f))
        with
        | Some(candidate, f) -> go candidate f
        | None -> ops, failure

    go operations firstFailure

/// Drives the adapter through `config.Tests` generated sequences (with power cuts when it has a
/// PowerCut) and judges every read against the model. Deterministic for a seed.
let check (adapter: Adapter) (config: Config) : Report =
    let crashes = adapter.PowerCut.IsSome

    let sequence (i: int) =
        let seed = config.Seed + i
        // From the seed alone, so that a report's seed with Tests = 1 replays the sequence.
        let size =
            3
            + (seed * 7919 % max 1 (config.MaxOperations - 2)
               + max 1 (config.MaxOperations - 2))
                %
                max 1 (config.MaxOperations - 2)

        let ops =
            Gen.sampleWithSeed (Rnd(uint64 seed, 0x9E3779B97F4A7C15UL)) size 1 (Scenarios.operations crashes)

        seed, ops[0]

    let rec search i =
        if i >= config.Tests then
            Passed(adapter.Name, config.Tests)
        else
            let seed, ops = sequence i

            match judge adapter ops with
            | None -> search (i + 1)
            | Some failure ->
                let shrunk, (reason, trace) = shrink adapter ops failure

                Falsified(
                    adapter.Name,
                    {
                        Trace = trace
                        Reason = reason
                        Seed = seed
                        Original = ops.Length
                        Shrunk = shrunk.Length
                    }
                )

    search 0
