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
    | [<MainCommand; ExactlyOnce>] Files of files: string list
    | Etcd_Exact

    interface IArgParserTemplate with
        member this.Usage =
            match this with
            | Files _ ->
                "the traces, one or more files (`-` reads one from stdin): operations and what an implementation returned (docs/traces.md)."
            | Etcd_Exact ->
                "judge durability by etcd 3.4's exact rule (the first Save after every open is durable), not raft's contract."

type ReplayArgs =
    | [<MainCommand; ExactlyOnce>] File of file: string
    | [<Unique>] Segment_Size of bytes: int64
    | Zero_Fill_Segments

    interface IArgParserTemplate with
        member this.Usage =
            match this with
            | File _ -> "the trace to run against the engine."
            | Segment_Size _ -> "segment size for the engine (default: the trace's '# segment size N' line, else 512)."
            | Zero_Fill_Segments ->
                "run the engine with WalOptions.ZeroFillSegments (default: on when a comment of the trace says 'zero-filled segments', as the explorer's counterexamples do)."

/// A trace's text from stdin, bounded in size as files are.
let private readStdin () =
    let limit = int Trace.Limits.traceBytes
    let buffer = Array.zeroCreate<char>(limit + 1)
    let mutable n = 0
    let mutable reading = true

    while reading && n <= limit do
        let got = Console.In.Read(buffer, n, buffer.Length - n)
        if got = 0 then reading <- false else n <- n + got

    if n > limit then
        raise (
            CommandError(
                $"stdin holds more than {limit} bytes; traces are at most {Trace.Limits.traceBytes}",
                Exit.usage
            )
        )

    String(buffer, 0, n)

/// Reads and parses a trace file (`-` for stdin), bounded in size; errors are the caller's (exit code 2).
let private load (file: string) =
    let text =
        if file = "-" then
            readStdin ()
        else
            if not (IO.File.Exists file) then
                raise (CommandError($"{file}: no such file", Exit.usage))

            let size = FileInfo(file).Length

            if size > Trace.Limits.traceBytes then
                raise (
                    CommandError($"{file} is {size} bytes; traces are at most {Trace.Limits.traceBytes}", Exit.usage)
                )

            IO.File.ReadAllText file

    match Trace.parse text with
    | Ok lines -> text, lines
    | Error e -> raise (CommandError($"{file}:{e.Line}:{e.Column}: {e.Message}", Exit.usage))

/// One trace's verdict: its exit code (0 allowed, 1 not, 2 not a trace), its lines printed.
let private checkOne (rule: DurabilityRule) (prefix: string) (file: string) =
    try
        let _, lines = load file
        let verdict = Trace.checkWith rule lines
        printfn "%s%s" prefix (Trace.describe verdict)

        match verdict with
        | Trace.Allowed _ -> Exit.ok
        | Trace.Violated _ -> Exit.walProblem
    with CommandError(message, code) ->
        eprintfn "wal: %s" message
        code

/// `wal check-trace FILE...`: every trace judged in one process, each verdict prefixed with its
/// file when there are several; the exit code is the worst: 2 if any is not a trace, else 1 if
/// any observation is not allowed, else 0.
let checkTrace (args: ParseResults<CheckTraceArgs>) =
    let files = args.GetResult CheckTraceArgs.Files

    if files |> List.filter ((=) "-") |> List.length > 1 then
        raise (CommandError("stdin (`-`) can be read once", Exit.usage))

    let rule =
        if args.Contains Etcd_Exact then
            DurabilityRule.EtcdExact
        else
            DurabilityRule.RaftContract

    let codes =
        [
            for file in files ->
                let prefix =
                    match files with
                    | [ _ ] -> ""
                    | _ -> (if file = "-" then "stdin" else file) + ": "

                checkOne rule prefix file
        ]

    if List.contains Exit.usage codes then
        Exit.usage
    elif List.contains Exit.walProblem codes then
        Exit.walProblem
    else
        Exit.ok

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

    let zeroFill =
        args.Contains Zero_Fill_Segments
        || Regex.IsMatch(text, @"^#.*zero-filled segments", RegexOptions.Multiline)

    let adapter =
        Wal.Simulation.EngineAdapter.simulatedOnWith zeroFill (Wal.Simulation.SimulatedStorage()) segmentSize

    let steps = lines |> List.map (fun l -> l.Step)
    let ran, failure = Oracle.run adapter steps

    printfn
        "# the engine (%d-byte segments%s) on the simulated disk"
        segmentSize
        (if zeroFill then ", zero-filled" else "")

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
