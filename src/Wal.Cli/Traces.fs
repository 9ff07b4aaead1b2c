/// `wal check-trace` and `wal replay`: traces (docs/traces.md) against the model and the engine.
module Wal.Cli.Traces

open System
open System.IO
open System.Text.RegularExpressions
open Argu
open Wal.Model
open Wal.Oracle
open Wal.Cli.Commands

type CheckTraceArgs =
    | [<MainCommand; ExactlyOnce>] File of file: string
    | Etcd_Exact

    interface IArgParserTemplate with
        member this.Usage =
            match this with
            | File _ -> "the trace: operations and what an implementation returned (docs/traces.md)."
            | Etcd_Exact ->
                "judge durability by etcd 3.4's exact rule (the first Save after every open is durable), not raft's contract."

type ReplayArgs =
    | [<MainCommand; ExactlyOnce>] File of file: string
    | [<Unique>] Segment_Size of bytes: int64

    interface IArgParserTemplate with
        member this.Usage =
            match this with
            | File _ -> "the trace to run against the engine."
            | Segment_Size _ -> "segment size for the engine (default: the trace's '# segment size N' line, else 512)."

/// Reads and parses a trace file, bounded in size; errors are the caller's (exit code 2).
let private load (file: string) =
    if not (IO.File.Exists file) then
        raise (CommandError($"{file}: no such file", Exit.usage))

    let size = FileInfo(file).Length

    if size > Trace.Limits.traceBytes then
        raise (CommandError($"{file} is {size} bytes; traces are at most {Trace.Limits.traceBytes}", Exit.usage))

    let text = IO.File.ReadAllText file

    match Trace.parse text with
    | Ok lines -> text, lines
    | Error e -> raise (CommandError($"{file}:{e.Line}:{e.Column}: {e.Message}", Exit.usage))

/// `wal check-trace FILE`: 0 when every observation is one the model allows, 1 at the first that is not.
let checkTrace (args: ParseResults<CheckTraceArgs>) =
    let file = args.GetResult CheckTraceArgs.File
    let _, lines = load file

    let rule =
        if args.Contains Etcd_Exact then
            DurabilityRule.EtcdExact
        else
            DurabilityRule.RaftContract

    let verdict = Trace.checkWith rule lines
    printfn "%s" (Trace.describe verdict)

    match verdict with
    | Trace.Allowed _ -> Exit.ok
    | Trace.Violated _ -> Exit.walProblem

/// `wal replay FILE`: runs the trace's steps against the engine on the simulated disk, prints
/// what the engine returned at every open, where that differs from what the trace recorded,
/// and the model's verdict on the engine's run.
let replay (args: ParseResults<ReplayArgs>) =
    let file = args.GetResult ReplayArgs.File
    let text, lines = load file

    let segmentSize =
        match args.TryGetResult Segment_Size with
        | Some n when n >= 64L -> n
        | Some n -> raise (CommandError($"--segment-size must be at least 64, not {n}", Exit.usage))
        | None ->
            let m =
                Regex.Match(text, @"^#\s*segment size (\d{2,12})\s*$", RegexOptions.Multiline)

            if m.Success then int64 m.Groups[1].Value else 512L

    let adapter = Wal.Simulation.EngineAdapter.simulated segmentSize
    let steps = lines |> List.map (fun l -> l.Step)
    let ran, failure = Oracle.run adapter steps
    printfn "# the engine (%d-byte segments) on the simulated disk" segmentSize
    printf "%s" (Trace.printLines ran)

    for recorded, engine in List.zip lines (List.truncate lines.Length ran) do
        match recorded.Observed, engine.Observed with
        | Some expected, Some observed when expected <> observed ->
            printfn
                "line %d: the trace recorded\n  %s\nthe engine returned\n  %s"
                recorded.Number
                (Trace.printObservation expected)
                (Trace.printObservation observed)
        | _ -> ()

    match failure with
    | Some message ->
        printfn "%s" message
        Exit.walProblem
    | None ->
        let verdict = Trace.checkWith DurabilityRule.EtcdExact ran
        printfn "model: %s" (Trace.describe verdict)

        match verdict with
        | Trace.Allowed _ -> Exit.ok
        | Trace.Violated _ -> Exit.walProblem
