/// `wal crash-test`'s engine: crash-tests any WAL implementation behind the driver protocol from
/// a recording of its own system calls. Each generated sequence runs through the driver under
/// strace; the recording is replayed into the simulated disk (Replay), giving the disk after
/// every mutating call; the driver's answers, read back from its own writes to stdout, tell
/// which operations were acknowledged before each call and which one was in flight, so the model
/// (Durability) knows what a power cut there may keep. Crash images of those disks are written
/// to real directories and recovered by a second driver process, judged as OracleExplorer judges
/// them: the read, then one more save, a close and a clean reopen.
module Wal.Simulation.CrashTest

open System
open System.Diagnostics
open System.IO
open Wal.Model
open Wal.Oracle
open Wal.Oracle.DriverProcess
open Wal.Oracle.Trace
open Wal.Simulation.CrashRecording
open Wal.Simulation.CrashImageDirectory

/// What to run and how hard to look (CrashRecording.Settings).
type Settings = CrashRecording.Settings

/// The settings `wal crash-test` starts from.
let defaults driver = CrashRecording.defaults driver

/// A divergence, shrunk: what the implementation was asked and did, where the power went, what
/// the disk kept and what recovery read against what the model allows.
type Divergence =
    {
        /// The workload and the recovery, in the trace language.
        Trace: string
        /// The recorded system call the power went after (or the fault injected).
        CrashPoint: string
        /// What the crash image kept of each file.
        Image: string
        Reason: string
        /// The seed of the sequence.
        Seed: int
        /// Moves before and after shrinking.
        Original: int
        Shrunk: int
    }

    /// The report's text.
    member this.Summary =
        String.concat
            "\n"
            [
                $"seed {this.Seed}, shrunk from {this.Original} to {this.Shrunk} moves"
                "workload (trace language):"
                this.Trace.TrimEnd('\n')
                $"crash point: {this.CrashPoint}"
                "image:"
                this.Image
                this.Reason
            ]

/// How a run ended.
type Verdict =
    | Passed
    | Diverged of Divergence
    /// A driver broke the protocol (died, hung, junk, a second answer).
    | Breached of Breach

/// What a run did.
type Report =
    {
        Driver: string
        Sequences: int
        CrashStates: int
        /// Sequences run again with an injected failure.
        FaultRuns: int
        Elapsed: TimeSpan
        /// Calls the replay could not model, each named once.
        Unmodelled: string list
        Verdict: Verdict
    }

    member this.Divergences =
        match this.Verdict with
        | Diverged _ -> 1
        | _ -> 0

    member this.StatesPerSecond =
        float this.CrashStates / max this.Elapsed.TotalSeconds 1e-9

    /// 0 passed, 1 diverged, 2 a breach.
    member this.ExitCode =
        match this.Verdict with
        | Passed -> 0
        | Diverged _ -> 1
        | Breached _ -> 2

/// The model as a trace moves it (OracleExplorer's `next`).
let private next (model: DurableLog) (op: Operation) (observed: Observation option) =
    match op, observed with
    | Close, _ -> Durability.synced model
    | Open at, Some(Saw o) -> Durability.recovered at o model |> Option.defaultValue model
    | (Open _ | OpenForRead _ | Repair), _ -> model
    | op, _ -> Durability.acknowledged model op

/// The long-lived recovery driver (not traced), restarted when it breaks.
type private Recovery(settings: Settings) =
    let mutable client: Client option = None
    let mutable greeting: Driver.Hello option = None

    /// The driver's hello (starting it if need be).
    member this.Hello =
        this.Client |> ignore
        greeting.Value

    member _.Client =
        match client with
        | Some c -> c
        | None ->
            match Client.Start(settings.Driver, settings.Timeout) with
            | Result.Error b -> raise (DriverBreach b)
            | Result.Ok c ->
                match Driver.hello c with
                | Result.Error b ->
                    c.Dispose()
                    raise (DriverBreach b)
                | Result.Ok h ->
                    greeting <- Some h
                    client <- Some c
                    c

    /// Sends an operation; a breach kills the process (the next call starts another) and raises.
    member this.Send (dir: string) (op: Operation) =
        let c = this.Client

        match Driver.send c dir op with
        | Result.Error(Choice1Of2 b) ->
            this.Dispose()
            raise (DriverBreach b)
        | Result.Error(Choice2Of2(kind, message)) -> Result.Error(kind, message)
        | Result.Ok dump -> Result.Ok dump

    member _.Dispose() =
        client |> Option.iter (fun c -> c.Dispose())
        client <- None

    interface IDisposable with
        member this.Dispose() = this.Dispose()

/// A disk state after a mutating call, with what the model allows if the power went then.
type private Point =
    {
        Step: ReplayStep
        Model: DurableLog
        /// Trace lines of the operations answered before the call.
        Before: Line list
        InFlight: Operation option
    }

/// Recovers one crash image through the recovery driver and judges it, then saves, closes and
/// reopens; None when the model allows it all, else why not and the trace lines after the crash.
let private judgeImage (settings: Settings) (recovery: Recovery) (point: Point) (crashed: DiskState) =
    let target = Path.Combine(settings.Work, $"image-{Guid.NewGuid():N}")

    try
        materialize crashed target
        let dir = walDir target
        let mutable number = point.Before.Length

        let line step observed =
            number <- number + 1

            {
                Number = number
                Step = step
                Observed = observed
            }

        let crash = line (Happen(PowerLoss None)) None

        let observe () =
            match recovery.Send dir (Open Snapshot.zero) with
            | Result.Ok(Some dump) -> observation dump
            | Result.Ok None -> SawError "no read"
            | Result.Error(kind, _) -> SawError kind

        let observed = observe ()
        let read = line (Do(Open Snapshot.zero)) (Some observed)
        let allowed = Durability.allowedAfterCrash Snapshot.zero point.Model

        match observed with
        | Saw outcome when List.contains outcome allowed ->
            match Durability.recovered Snapshot.zero outcome point.Model, outcome with
            | None, _ -> Some($"line {read.Number}: no candidate explains the read", [ crash; read ])
            | Some recovered, (Read contents | NotFound contents) ->
                let state, entries = OracleExplorer.onwards contents
                let save = line (Do(Save(state, entries))) None
                let close = line (Do Close) None

                let refused =
                    match recovery.Send dir (Save(state, entries)) with
                    | Result.Error(kind, message) ->
                        Some $"after recovering, saving entry {(List.head entries).Index} failed: {kind}: {message}"
                    | Result.Ok _ ->
                        match recovery.Send dir Close with
                        | Result.Error(kind, message) ->
                            Some $"after recovering and saving, close failed: {kind}: {message}"
                        | Result.Ok _ -> None

                match refused with
                | Some message -> Some(message, [ crash; read; save; close ])
                | None ->
                    let after =
                        Durability.acknowledged recovered (Save(state, entries)) |> Durability.synced

                    let reread = observe ()
                    let again = line (Do(Open Snapshot.zero)) (Some reread)
                    let allowedAfter = Durability.allowedAfterCrash Snapshot.zero after

                    match reread with
                    | Saw o when List.contains o allowedAfter -> None
                    | _ -> Some(ReadDiff.explain again.Number reread allowedAfter, [ crash; read; save; close; again ])
            | Some _, _ -> None
        | _ -> Some(ReadDiff.explain read.Number observed allowed, [ crash; read ])
    finally
        remove target

/// The points of a recorded run: each mutating call with the model at it.
let private pointsOf (rule: DurabilityRule) (recorded: Recorded) =
    let exchanges = Array.ofList recorded.Exchanges

    // models[i]: the model once requests 0 .. i-1 were answered.
    let models =
        exchanges
        |> Array.scan
            (fun model exchange ->
                match exchange.Op, exchange.Reply with
                | None, _ -> model
                | Some op, Acked observed -> next model op observed
                | Some op, Failed _ -> Durability.interrupted model op)
            (Durability.empty rule)

    let lines =
        exchanges
        |> Array.mapi (fun i exchange ->
            exchange.Op
            |> Option.map (fun op ->
                {
                    Number = 0
                    Step = Do op
                    Observed =
                        match exchange.Reply with
                        | Acked o -> o
                        | Failed(kind, _) -> Some(SawError kind)
                }))

    let acks = recorded.Replayed.Acknowledgements |> Array.ofList

    [
        for step in recorded.Replayed.Steps ->
            let answered =
                acks
                |> Array.takeWhile (fun a -> a.AfterStep < step.Number)
                |> Array.length
                |> min exchanges.Length

            let model, inFlight =
                if answered < exchanges.Length then
                    match exchanges[answered].Op with
                    | Some op -> Durability.interrupted models[answered] op, Some op
                    | None -> models[answered], None
                else
                    models[answered], None

            {
                Step = step
                Model = model
                Before =
                    lines[.. answered - 1]
                    |> Array.choose id
                    |> Array.mapi (fun i l -> { l with Number = i + 1 })
                    |> List.ofArray
                InFlight = inFlight
            }
    ]

/// A divergence before shrinking.
type private Found =
    {
        Reason: string
        Trace: string
        CrashPoint: string
        Image: string
        /// Operations of the sequence that lead to it (those after cannot matter).
        Ops: int
    }

let private joinTrace (parts: string list) =
    parts
    |> List.map (fun part -> part.Trim('\n'))
    |> List.filter (String.IsNullOrEmpty >> not)
    |> String.concat "\n"

let private opLines (exchanges: Exchange list) =
    exchanges
    |> List.choose (fun e -> e.Op |> Option.map (fun op -> op, e.Reply))
    |> List.mapi (fun i (op, reply) ->
        {
            Number = i + 1
            Step = Do op
            Observed =
                match reply with
                | Acked o -> o
                | Failed(kind, _) -> Some(SawError kind)
        },
        reply)

/// What the driver's answers show without any crash: a refusal (unless a fault was injected),
/// a write acknowledged after a failure, or a read the model does not allow.
let private judgeAnswers (rule: DurabilityRule) (injection: Injection option) (exchanges: Exchange list) =
    let lines = opLines exchanges
    let firstFailure = lines |> List.tryFindIndex (fun (_, r) -> r.IsFailed)

    let noCrash why = $"none: {why}"

    let answered, failure =
        match firstFailure with
        | None -> lines, None
        | Some i -> List.take i lines, Some(List.item i lines)

    let shown upTo =
        lines |> List.map fst |> List.filter (fun l -> l.Number <= upTo) |> printLines

    let verdict =
        match checkWith rule (List.map fst answered) with
        | Allowed _ -> None
        | Violated violation ->
            let upTo, reason =
                match violation with
                | Disallowed(line, observed, allowed) -> line, ReadDiff.explain line observed allowed
                | Misplaced(line, _) -> line, describe (Violated violation)

            Some
                {
                    Reason = reason
                    Trace = shown upTo
                    CrashPoint =
                        match injection with
                        | Some i -> $"none: the read was taken without a power cut, after strace failed {i.Target}"
                        | None -> noCrash "the read was taken without a power cut"
                    Image = "  (the disk as the driver left it)"
                    Ops = upTo
                }

    match verdict, failure, injection with
    | Some found, _, _ -> Some found
    | None, None, _ -> None
    | None, Some(line, Failed(kind, message)), None ->
        Some
            {
                Reason = $"line {line.Number}: `{printStep line.Step None}` failed: {kind}: {message}"
                Trace = shown line.Number
                CrashPoint = noCrash "the driver refused what raft asks of it"
                Image = "  (none)"
                Ops = line.Number
            }
    | None, Some(line, _), Some injected ->
        let acknowledged =
            lines
            |> List.skip line.Number
            |> List.tryFind (fun (l, r) ->
                match l.Step, r with
                | Do op, Acked _ -> writes op
                | _ -> false)

        acknowledged
        |> Option.map (fun (late, _) ->
            {
                Reason =
                    $"line {late.Number}: `{printStep late.Step None}` was acknowledged after line {line.Number} (`{printStep line.Step None}`) failed; a log must fail closed after a failed write or sync"
                Trace = shown late.Number
                CrashPoint = $"none: strace failed {injected.Target}"
                Image = "  (none)"
                Ops = late.Number
            })
    | None, Some _, None -> None

/// Runs one sequence under strace and judges its answers and up to `budget` crash images of
/// the disk after its mutating calls; returns the images judged, the first divergence and the
/// recording.
let private examine settings (recovery: Recovery) seed budget (injection: Injection option) (steps: Step list) =
    let recorded = record settings steps injection

    match judgeAnswers settings.Rule injection recorded.Exchanges with
    | Some found -> 0, Some found, recorded
    | None ->
        let points = pointsOf settings.Rule recorded |> Array.ofList
        let n = points.Length

        let chosen, perState =
            if n = 0 || budget <= 0 then
                [||], 0
            elif budget >= n then
                points, min settings.ImagesPerState (budget / n)
            else
                Array.init budget (fun k -> points[k * n / budget]), 1

        let mutable judged = 0
        let mutable found = None

        for i, point in Array.indexed chosen do
            if found.IsNone then
                for image in imagesOf point.Step.State perState (seed + i) do
                    if found.IsNone then
                        judged <- judged + 1
                        let crashed = CrashImage.crash point.Step.State image

                        match judgeImage settings recovery point crashed with
                        | None -> ()
                        | Some(reason, after) ->
                            let inFlight =
                                point.InFlight
                                |> Option.map (fun op -> $", while `{printStep (Do op) None}` was in flight")
                                |> Option.defaultValue ""

                            let call =
                                $"system call {point.Step.Number} of the recording (line {point.Step.Line}): {point.Step.Call} on {point.Step.Path}{inFlight}"

                            let fault =
                                injection
                                |> Option.map (fun i -> $"; strace failed {i.Target}")
                                |> Option.defaultValue ""

                            found <-
                                Some
                                    {
                                        Reason = reason
                                        Trace =
                                            joinTrace
                                                [
                                                    printLines point.Before
                                                    $"# the power went after {call}"
                                                    printLines after
                                                ]
                                        CrashPoint = call + fault
                                        Image = describeImage point.Step.State crashed
                                        Ops = point.Before.Length + 1
                                    }

        judged, found, recorded

/// A call to fail in a sequence's second run, chosen from its first run's recording: a sync
/// (EIO) or a write (ENOSPC) on a file in the log's directory, counted as strace counts (per
/// call name and per thread), so other files and stdout are never hit.
let private chooseInjection (recorded: Recorded) (seed: int) =
    let root = recorded.Root.TrimEnd '/' + "/"
    let counts = Collections.Generic.Dictionary<struct (int * string), int>()

    let candidates =
        [
            for line in recorded.Lines do
                let key = struct (line.Pid, line.Name)

                let ordinal =
                    (match counts.TryGetValue key with
                     | true, c -> c
                     | _ -> 0)
                    + 1

                counts[key] <- ordinal

                match line.Name, line.Args, line.Result with
                | ("fsync" | "fdatasync"), Descriptor(_, path) :: _, Some _ when path.StartsWith root ->
                    yield line, ordinal, "EIO", path
                | ("write" | "pwrite64" | "writev" | "pwritev" | "pwritev2" | "fallocate"),
                  Descriptor(_, path) :: _,
                  Some _ when path.StartsWith root -> yield line, ordinal, "ENOSPC", path
                | _ -> ()
        ]

    match candidates with
    | [] -> None
    | _ ->
        let random = Random seed
        // Half the runs fail a sync, half a write, when both are there.
        let syncs, writes = candidates |> List.partition (fun (_, _, e, _) -> e = "EIO")

        let pool =
            match syncs, writes with
            | [], w -> w
            | s, [] -> s
            | s, w -> if random.Next 2 = 0 then s else w

        let line, ordinal, errno, path = pool[random.Next pool.Length]

        Some
            {
                Call = line.Name
                Ordinal = ordinal
                Errno = errno
                Target = $"{line.Name} #{ordinal} of its thread ({errno}) on {path.Substring(root.Length - 1)}"
            }

/// Runs the crash test: `settings.Sequences` generated sequences (only what the driver's hello
/// supports, no power losses: crashes come from the images), each recorded under strace and its
/// crash states judged, `settings.States` in all. Stops at the first divergence and shrinks it
/// by re-running under strace; a driver breach ends it at once.
let run (settings: Settings) : Report =
    let clock = Stopwatch.StartNew()
    Directory.CreateDirectory settings.Work |> ignore
    use recovery = new Recovery(settings)
    let mutable sequences = 0
    let mutable states = 0
    let mutable faultRuns = 0
    let unmodelled = Collections.Generic.List<string>()

    let note (recorded: Recorded) =
        for u in recorded.Replayed.Unmodelled do
            if not (unmodelled.Contains u) then
                unmodelled.Add u

    let verdict, elapsed =
        try
            let hello = recovery.Hello

            let config: Oracle.Config =
                {
                    Tests = settings.Sequences
                    Seed = settings.Seed
                    MaxOperations = settings.MaxOperations
                    Rule = settings.Rule
                }

            let rec search i =
                if i >= settings.Sequences then
                    None
                else
                    let seed, steps = Oracle.sequenceSupporting hello.Supports config false i
                    let share = (settings.States - states) / (settings.Sequences - i)
                    let clean = if settings.Faults then share / 2 else share
                    let judged, found, recorded = examine settings recovery seed clean None steps
                    sequences <- sequences + 1
                    states <- states + judged
                    note recorded

                    match found with
                    | Some f -> Some(seed, steps, None, f)
                    | None when settings.Faults ->
                        match chooseInjection recorded seed with
                        | None -> search (i + 1)
                        | Some injection ->
                            let judged, found, recorded =
                                examine settings recovery seed (share - clean) (Some injection) steps

                            faultRuns <- faultRuns + 1
                            states <- states + judged
                            note recorded

                            match found with
                            | Some f -> Some(seed, steps, Some injection, f)
                            | None -> search (i + 1)
                    | None -> search (i + 1)

            let first = search 0
            let elapsed = clock.Elapsed

            match first with
            | None -> Passed, elapsed
            | Some(seed, steps, injection, found) ->
                let moves = Scenarios.moves steps
                let budget = max 1 (settings.States / max 1 settings.Sequences)

                let fails candidate =
                    try
                        let _, f, _ = examine settings recovery seed budget injection candidate
                        f
                    with DriverBreach _ ->
                        None

                // The moves after the operation in flight cannot matter: start from the prefix
                // that reaches it when it still diverges. An injected fault counts the calls
                // before it, which a prefix keeps as they were.
                let prefix =
                    moves
                    |> List.mapFold
                        (fun before move -> (before, move), before + (move |> List.filter holds |> List.length))
                        0
                    |> fst
                    |> List.takeWhile (fun (before, _) -> before < found.Ops)
                    |> List.map snd

                let start, first =
                    if prefix.Length < moves.Length then
                        match fails (List.concat prefix) with
                        | Some f -> prefix, f
                        | None -> moves, found
                    else
                        moves, found

                let shrunk, found =
                    match injection with
                    // Dropping a move or shortening a payload would move the injected call to
                    // another one, so a fault's counterexample is only cut to its prefix.
                    | Some _ -> start, first
                    | None -> Oracle.shrinkWith fails start first

                Diverged
                    {
                        Trace = found.Trace
                        CrashPoint = found.CrashPoint
                        Image = found.Image
                        Reason = found.Reason
                        Seed = seed
                        Original = moves.Length
                        Shrunk = shrunk.Length
                    },
                elapsed
        with DriverBreach b ->
            Breached b, clock.Elapsed

    {
        Driver = String.Join(' ', settings.Driver.Program :: settings.Driver.Arguments)
        Sequences = sequences
        CrashStates = states
        FaultRuns = faultRuns
        Elapsed = elapsed
        Unmodelled = List.ofSeq unmodelled
        Verdict = verdict
    }
