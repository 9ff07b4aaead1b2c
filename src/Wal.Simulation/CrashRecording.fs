/// `wal crash-test`'s recordings: a generated sequence run once through the driver under strace,
/// the driver's answers to each request, and the recording replayed into the simulated disk.
module Wal.Simulation.CrashRecording

open System
open System.Diagnostics
open System.IO
open Wal.Model
open Wal.Oracle
open Wal.Oracle.DriverProcess
open Wal.Oracle.Trace

/// What to run and how hard to look.
type Settings =
    {
        /// The driver (without strace: the checker adds it).
        Driver: Command
        Sequences: int
        /// Crash states judged in the whole run, spread across the sequences.
        States: int
        Seed: int
        /// Moves per sequence, at most.
        MaxOperations: int
        Rule: DurabilityRule
        /// Each sequence runs a second time with one failing system call injected by strace.
        Faults: bool
        /// How long the driver may take over one answer.
        Timeout: TimeSpan
        /// Where the recordings, the drivers' directories and the crash images go.
        Work: string
        /// Crash images per disk state, at most.
        ImagesPerState: int
        /// Leave the recordings and the drivers' directories in `Work` (for a person to read).
        Keep: bool
    }

/// The settings `wal crash-test` starts from.
let defaults (driver: Command) =
    {
        Driver = driver
        Sequences = 20
        States = 2000
        Seed = 1
        MaxOperations = 40
        Rule = DurabilityRule.RaftContract
        Faults = false
        Timeout = TimeSpan.FromSeconds 10.0
        Work = Path.GetTempPath()
        ImagesPerState = 24
        Keep = false
    }

/// A driver that broke the protocol while being recorded or while recovering.
exception DriverBreach of Breach

/// A failing call strace injects: the `Ordinal`th call of `Call` by one thread fails with `Errno`.
type Injection =
    {
        Call: string
        Ordinal: int
        Errno: string
        /// What was hit, for the report.
        Target: string
    }

/// A driver's answer to one request of a recorded run.
type Reply =
    | Acked of Observation option
    | Failed of kind: string * message: string

/// One request of a recorded run (None: hello or quit) and its reply.
type Exchange = { Op: Operation option; Reply: Reply }

/// A sequence run once under strace, replayed.
type Recorded =
    {
        Exchanges: Exchange list
        Lines: StraceLine list
        Replayed: Replayed
        /// The real directory mapped to the simulated root.
        Root: string
    }

/// What a driver's read says, as a trace observation.
let observation (dump: ReadAllJson.Dump) =
    match ReadAllJson.toOutcome dump with
    | Result.Ok o -> Saw o
    | Result.Error kind -> SawError kind

/// The log's directory under a run's root.
let walDir (root: string) = Path.Combine(root, "wal")

/// Deletes a directory or file, trying again a few times: a driver may still be making a file
/// in it in the background (etcd-style logs prepare their next segment ahead of time).
let remove (path: string) =
    let rec attempt n =
        try
            if Directory.Exists path then
                Directory.Delete(path, true)
            elif File.Exists path then
                File.Delete path
        with _ when n > 0 ->
            Threading.Thread.Sleep 20
            attempt (n - 1)

    try
        attempt 5
    with _ ->
        ()

/// Whether an operation writes (so a driver that failed must refuse it: it fails closed).
let writes (op: Operation) =
    match op with
    | Save _
    | SaveSnapshot _
    | Sync -> true
    | _ -> false

/// Runs the steps through the driver under strace and replays the recording. After a failure
/// only writes are sent (each must be refused), up to the next close or open.
let record (settings: Settings) (steps: Step list) (injection: Injection option) : Recorded =
    let id = Guid.NewGuid().ToString("N")
    let root = Path.Combine(settings.Work, $"run-{id}")
    let recording = Path.Combine(settings.Work, $"run-{id}.strace")
    Directory.CreateDirectory root |> ignore

    let inject =
        match injection with
        | Some i -> [ "-e"; $"inject={i.Call}:error={i.Errno}:when={i.Ordinal}" ]
        | None -> []

    let command =
        {
            Program = "strace"
            Arguments =
                [ "--seccomp-bpf" ]
                @ Strace.options recording
                @ inject
                @ [ "--"; settings.Driver.Program ]
                @ settings.Driver.Arguments
        }

    try
        let client =
            match Client.Start(command, settings.Timeout) with
            | Result.Ok c -> c
            | Result.Error b -> raise (DriverBreach b)

        let exchanges =
            try
                match Driver.hello client with
                | Result.Error b -> raise (DriverBreach b)
                | Result.Ok _ -> ()

                let dir = walDir root

                let rec go failed acc (ops: Operation list) =
                    match ops with
                    | [] -> List.rev acc
                    | op :: rest when failed && not (writes op) -> List.rev acc
                    | op :: rest ->
                        let reply =
                            match Driver.send client dir op with
                            // Under an injected fault an open may fail as any request may: its
                            // read's error is the failure, and the log is then not open.
                            | Result.Ok(Some dump) when injection.IsSome && (observation dump).IsSawError ->
                                Failed(defaultArg dump.Error "", "recovery failed under the injected fault")
                            | Result.Ok dump -> Acked(dump |> Option.map observation)
                            | Result.Error(Choice1Of2 b) -> raise (DriverBreach b)
                            | Result.Error(Choice2Of2(kind, message)) -> Failed(kind, message)

                        let failedNow =
                            match reply with
                            | Failed _ -> true
                            | Acked _ -> false

                        go (failed || failedNow) ({ Op = Some op; Reply = reply } :: acc) rest

                let ops =
                    Oracle.stepsFor steps
                    |> List.choose (function
                        | Do op -> Some op
                        | Happen _ -> None)

                { Op = None; Reply = Acked None } :: go false [] ops
            finally
                // A broken driver is not waited for; a working one is let finish (strace with it).
                client.Quit(TimeSpan.FromSeconds(if client.Broken.IsSome then 1.0 else 30.0))
                |> ignore

                client.Dispose()

        let text = File.ReadAllText recording |> Strace.pruneOutside root

        let parsed = Strace.parse text

        match parsed with
        | Result.Error e ->
            failwith $"strace's recording does not read at line {e.Line}, column {e.Column}: {e.Message}"
        | Result.Ok lines ->
            {
                Exchanges = exchanges
                Lines = lines
                Replayed =
                    Replay.run
                        {
                            Root = root
                            WorkingDirectory = Environment.CurrentDirectory
                        }
                        DiskState.empty
                        lines
                Root = root
            }
    finally
        if not settings.Keep then
            remove root
            remove recording
