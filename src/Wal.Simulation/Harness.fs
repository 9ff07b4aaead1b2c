/// Runs steps (Wal.Model's vocabulary) on the engine over the simulated disk, with power cuts
/// between steps and inside them, injected faults and bit rot, and judges every ReadAll against
/// the model's durability rules.
module Wal.Simulation.Harness

open System
open Wal
open Wal.Model
open Wal.Simulation.Convert

/// The log's directory on the simulated disk.
[<Literal>]
let Directory = "/data/wal"

/// How a run is set up.
type RunConfig =
    {
        SegmentSize: int64
        /// Runs the engine with WalOptions.ZeroFillSegments: every segment's space written with zeros before use.
        ZeroFill: bool
        /// Cut the power after this many mutating calls, inside whatever operation makes them.
        CrashAfter: int option
        /// Chooses what survives that power cut.
        CrashImage: int
        /// Where recovery after that power cut opens the log.
        RecoverAt: Snapshot
        /// Lost sectors read as garbage rather than their old contents (the stress mode).
        Garbage: bool
        Faults: Fault list
        /// Sees the disk after every mutating call of the run's first disk, with what the model
        /// would allow if the power went then (the crash-state explorer captures states with it).
        OnMutation: (DiskState -> DurableLog -> unit) option
        /// Sees the run's first disk right after every clean Close, with what the model then
        /// allows (everything acknowledged is durable): a power cut right after a clean close.
        OnClose: (DiskState -> DurableLog -> unit) option
        /// Told when an injected fault fires.
        OnFault: (unit -> unit) option
    }

let defaultConfig =
    {
        SegmentSize = 4096L
        ZeroFill = false
        CrashAfter = None
        CrashImage = 0
        RecoverAt = Snapshot.zero
        Garbage = false
        Faults = []
        OnMutation = None
        OnClose = None
        OnFault = None
    }

/// What a run found.
type RunResult =
    {
        Divergence: string option
        /// How many crash states were recovered and judged.
        CrashStates: int
        /// Mutating calls made, over all disks of the run, up to the final read (not the teardown after it).
        Mutations: int
    }

let rec isPowerLoss (ex: exn) =
    match ex with
    | null -> false
    | Wal.Simulation.PowerLoss -> true
    | _ -> isPowerLoss ex.InnerException

/// WalOptions.ZeroAheadBytes on the simulated disk: a quarter of a segment (at least 64 bytes),
/// so the explorer meets Saves that take zeros along and Saves too large to (more than a
/// sixteenth of it), and zeros that stop short of a segment's end as well as at it.
let zeroAheadFor (segmentSize: int64) =
    int (min (int64 WalOptions.DefaultZeroAheadBytes) (max 64L (segmentSize / 4L)))

/// The engine's options on `fs`: `segmentSize`-byte segments prepared in the foreground (so a
/// run is deterministic), zero-filled when `zeroFill`.
let optionsWith (zeroFill: bool) (fs: SimulatedFileSystem) (segmentSize: int64) =
    WalOptions(
        FileSystem = fs,
        SegmentSizeBytes = segmentSize,
        PrepareSegmentsInBackground = false,
        ZeroFillSegments = zeroFill,
        ZeroAheadBytes = zeroAheadFor segmentSize
    )

/// The engine's options on `fs` as etcd runs: `segmentSize`-byte segments, fallocated only.
let optionsFor (fs: SimulatedFileSystem) (segmentSize: int64) = optionsWith false fs segmentSize

/// Recovery as etcd's server does it: Open at the snapshot and ReadAll; on a torn tail, Repair
/// once, then Open and ReadAll again. Returns the outcome and, when the log is readable, the
/// log ready to append.
let rec recover (options: WalOptions) (at: Snapshot) : EngineOutcome * WriteAheadLog option =
    recoverWith true options at

/// Recovery with or without the Repair step: after a clean close nothing may need repairing,
/// so a torn tail then is itself a divergence.
and recoverWith (repair: bool) (options: WalOptions) (at: Snapshot) : EngineOutcome * WriteAheadLog option =
    let openAndRead () =
        match
            (try
                Ok(WriteAheadLog.Open(Directory, Wal.FSharp.ModelConvert.toSnapshot at, options))
             with :? WalException as ex ->
                 Error ex)
        with
        | Error ex when ex.Kind = WalErrorKind.FileNotFound -> Model NoLog, None
        | Error ex -> OtherError(ex.Kind, ex.Message), None
        | Ok wal ->
            match readOutcome wal with
            | Model(Read _)
            | Model(NotFound _) as outcome -> outcome, Some wal
            | outcome ->
                (try
                    wal.Dispose()
                 with _ ->
                     ())

                outcome, None

    match openAndRead () with
    | OtherError(WalErrorKind.UnexpectedEof, _), _ when repair ->
        try
            WalDirectory.Repair(Directory, options) |> ignore
            openAndRead ()
        with :? WalException as ex ->
            OtherError(ex.Kind, ex.Message), None
    | result -> result

/// Whether an observed outcome is one the model allows; corruption is allowed where the disk
/// may hold garbage.
let judge (allowed: ReadOutcome list) (corruptionAllowed: bool) (observed: EngineOutcome) =
    match observed with
    | Model o when List.contains o allowed -> None
    | OtherError((WalErrorKind.CrcMismatch | WalErrorKind.CorruptRecord | WalErrorKind.RecordTooLarge), _) when
        corruptionAllowed
        ->
        None
    | _ ->
        let choices = allowed |> List.map ReadOutcome.describe |> String.concat "\n    or "
        Some $"the engine read\n    {describe observed}\n  where the model allows\n    {choices}"

/// Performs a log operation (Save, SaveSnapshot, Sync, ReleaseLockTo) on an open log.
let perform (wal: WriteAheadLog) (operation: Operation) =
    match operation with
    | Save(state, entries) ->
        wal.Save(
            Wal.FSharp.ModelConvert.toHardState state,
            entries |> List.map Wal.FSharp.ModelConvert.toEntry |> Array.ofList
        )
    | SaveSnapshot s -> wal.SaveSnapshot(Wal.FSharp.ModelConvert.toSnapshot s)
    | Sync -> wal.Sync()
    | ReleaseLockTo i -> wal.ReleaseLockTo i
    | Create _
    | Close
    | Open _
    | OpenForRead _
    | Repair -> invalidOp "not a log operation"

let private isWrite (operation: Operation) =
    match operation with
    | Save(state, entries) -> not (HardState.isEmpty state && entries.IsEmpty)
    | SaveSnapshot _
    | Sync -> true
    | _ -> false

/// Where the run's log stands between steps.
type private Phase =
    /// Open for appending, or no log at all (a recovery found none, or Create failed).
    | Opened of WriteAheadLog option
    /// Closed cleanly: the next Open reads the log as it is, with no Repair.
    | Closed
    /// The power went: the disk is a crash image, and the next Open recovers the log.
    | Crashed

/// A run between steps: the disk, the log, what the model allows, and what was found.
type private Run =
    {
        Fs: SimulatedFileSystem
        Phase: Phase
        Model: DurableLog
        /// A write or sync failed: the page cache cannot be trusted (PostgreSQL's fsyncgate), so
        /// no later write may succeed and the next open is crash recovery, as PostgreSQL's PANIC
        /// makes it.
        FailedClosed: bool
        Divergence: string option
        /// Garbage made the log unreadable, which the model allows; nothing more to check.
        Stopped: bool
        CrashStates: int
        /// Mutating calls made on the disks replaced by power cuts.
        Mutations: int
    }

let private going (run: Run) =
    run.Divergence.IsNone && not run.Stopped

let private diverge (where: string) (message: string) (run: Run) =
    match run.Divergence with
    | None ->
        { run with
            Divergence = Some $"after `{where}`: {message}"
        }
    | Some _ -> run

let private log (run: Run) =
    match run.Phase with
    | Opened wal -> wal
    | Closed
    | Crashed -> None

/// Runs steps on the engine over the simulated disk, judging every recovery and reopen against
/// the model: a fold over the run, with one guard turning what a step throws into a transition.
/// Whether an implementation may refuse `step` (InvalidArgument, writing nothing): a Save raft
/// would not make on what the disk holds after a crash (the generator does not know what the
/// crash took), which the model's invariants refuse over some record stream it allows.
let refusable (step: Step) (model: DurableLog) =
    match step with
    | Do(Save(state, entries)) ->
        model.Bases
        |> List.exists (fun basis -> (Invariants.saveViolation (basis @ model.Session) state entries).IsSome)
    | _ -> false

let private runner (config: RunConfig) =
    let options (run: Run) =
        optionsWith config.ZeroFill run.Fs config.SegmentSize

    /// Judges a read at `at`, and moves the model to what it explains.
    let settle (where: string) (at: Snapshot) (observed: EngineOutcome) (opened: WriteAheadLog option) (run: Run) =
        match judge (Durability.allowedAfterCrash at run.Model) config.Garbage observed with
        | Some message -> diverge where message run
        | None ->
            match observed with
            | Model o ->
                match Durability.recovered at o run.Model with
                | Some next ->
                    // A log opened anew has not failed; only the handle that saw the error refuses writes.
                    { run with
                        Model = next
                        Phase = Opened opened
                        FailedClosed = false
                    }
                | None -> diverge where "no candidate explains the read" run
            | OtherError _ -> { run with Stopped = true }

    /// The power goes: the disk keeps crash image `image` of what it held.
    let lose (image: int) (run: Run) =
        let survivor =
            CrashImage.crash run.Fs.State (CrashImage.random run.Fs.State config.Garbage image)

        { run with
            Fs = SimulatedFileSystem(survivor)
            Phase = Crashed
            FailedClosed = false
            CrashStates = run.CrashStates + 1
            Mutations = run.Mutations + run.Fs.Mutations
        }

    /// Recovery as etcd's server does it, at `at`, judged.
    let recoverAt (where: string) (at: Snapshot) (run: Run) =
        let observed, opened = recover (options run) at
        settle where at observed opened run

    let powerCut (where: string) (image: int) (at: Snapshot) (run: Run) = run |> lose image |> recoverAt where at

    // Where recovery after a power cut inside a step opens: the configured snapshot, or (as raft
    // opens) the last snapshot the run installed past its entries.
    let recoveryPoint (run: Run) =
        if config.RecoverAt <> Snapshot.zero then
            config.RecoverAt
        else
            Durability.installed run.Model

    let reopen (where: string) (at: Snapshot) (run: Run) =
        let observed, opened =
            match recoverWith false (options run) at with
            // An injected fault may fail the reopen itself (ENOSPC while zeroing the tail): a
            // clear error, after which the log must still open.
            | OtherError(WalErrorKind.Io, _), _ when not config.Faults.IsEmpty && not run.Fs.Dead ->
                recoverWith false (options run) at
            | result -> result

        if run.Fs.Dead then
            powerCut where config.CrashImage (recoveryPoint run) run
        else
            settle where at observed opened run

    let act (step: Step) (where: string) (run: Run) : Run =
        match step, run.Phase with
        | Happen(HarnessEvent.PowerLoss image), _ -> lose (defaultArg image config.CrashImage) run
        | Do(Create metadata as operation), Opened None when not run.Model.Created ->
            let wal = WriteAheadLog.Create(Directory, ReadOnlyMemory metadata, options run)

            { run with
                Phase = Opened(Some wal)
                Model = Durability.acknowledged run.Model operation
            }
        | Do(Create _), _ -> run
        // After a failed write or sync, the log is closed as a user's `use` closes it: Dispose
        // must neither write nor sync again (the disk counts a retried sync). Repairing is left
        // to the crash recovery the next open makes.
        | Do Close, Opened wal when run.FailedClosed ->
            wal |> Option.iter (fun l -> l.Dispose())
            { run with Phase = Opened None }
        | Do(Close | Repair), _ when run.FailedClosed -> run
        | Do(Open at), _ when run.FailedClosed -> powerCut where config.CrashImage at run
        | Do Close, Opened wal ->
            wal |> Option.iter (fun l -> l.Dispose())

            { run with
                Phase = Closed
                Model = Durability.synced run.Model
            }
        | Do Close, (Closed | Crashed) -> run
        | Do Repair, Closed when run.Model.Created ->
            match WalDirectory.Repair(Directory, options run) with
            | RepairOutcome.NothingToRepair -> run
            | outcome -> diverge where $"Repair of a cleanly closed log said {outcome}" run
        | Do Repair, _ -> run
        | Do(Open at), Closed -> reopen where at run
        | Do(Open at), Crashed -> recoverAt where at run
        // Already open: the recovery after a power cut inside the close before it opened it.
        | Do(Open _), Opened _ -> run
        | Do(OpenForRead at), _ ->
            // A reader beside the writer sees what was written out, which may lag behind what
            // was acknowledged (the page writer buffers commit-only saves): any candidate.
            let observed =
                try
                    use reader =
                        WriteAheadLog.OpenForRead(Directory, Wal.FSharp.ModelConvert.toSnapshot at, options run)

                    readOutcome reader
                with :? WalException as ex ->
                    if ex.Kind = WalErrorKind.FileNotFound then
                        Model NoLog
                    else
                        OtherError(ex.Kind, ex.Message)

            if run.Fs.Dead then
                powerCut where config.CrashImage (recoveryPoint run) run
            else
                match judge (Durability.allowedAfterCrash at run.Model) false observed with
                | Some message -> diverge where message run
                | None -> run
        | Do operation, Opened(Some wal) ->
            perform wal operation

            let run =
                if run.FailedClosed && isWrite operation then
                    diverge where "a write was acknowledged after an earlier write or sync failed" run
                else
                    run

            { run with
                Model = Durability.acknowledged run.Model operation
            }
        | Do _, _ -> run

    /// The one guard: a step's power loss (even one a call swallowed, found dead by the next
    /// call) is a power cut and recovery; an injected I/O error fails the log closed; an error
    /// after that is expected; any other is a divergence.
    let guarded (step: Step) (where: string) (run: Run) : Run =
        let interrupted () =
            match step with
            | Do operation -> Durability.interrupted run.Model operation
            | Happen _ -> run.Model

        try
            act step where run
        with
        | ex when isPowerLoss ex ->
            // The run's disk is the one that died (the guard sees the run from before the step).
            let run = { run with Model = interrupted () }
            powerCut where config.CrashImage (recoveryPoint run) run
        | :? WalException as ex when not config.Faults.IsEmpty && ex.Kind = WalErrorKind.Io ->
            { run with
                Model = interrupted ()
                FailedClosed = true
            }
        | :? WalException as ex when run.FailedClosed && ex.Kind = WalErrorKind.Failed -> run
        // A Save raft would not make on what the disk holds after a crash (the generator does not
        // know what the crash took) is refused whole, writing nothing, exactly when the model's
        // invariants say it breaks one on what the engine wrote or read.
        | :? WalException as ex when ex.Kind = WalErrorKind.InvalidArgument && refusable step run.Model -> run
        | :? WalException as ex when step = Do Repair -> diverge where $"Repair failed: {ex.Kind} {ex.Message}" run
        | :? WalException as ex -> diverge where $"unexpected {ex.Kind}: {ex.Message}" run

    guarded

/// Runs the steps, judging every recovery and reopen against the model.
let run (config: RunConfig) (steps: Step list) : RunResult =
    let fs = SimulatedFileSystem(DiskState.empty)
    fs.CrashAfter <- config.CrashAfter
    fs.Faults <- config.Faults
    fs.OnFault <- config.OnFault
    // What the model allows if the power goes now: the step in flight may have written.
    let inFlight = ref Durability.none

    match config.OnMutation with
    | Some hook -> fs.Observe <- Some(fun _ state -> hook state inFlight.Value)
    | None -> ()

    let guarded = runner config

    let start =
        {
            Fs = fs
            Phase = Opened None
            Model = Durability.none
            FailedClosed = false
            Divergence = None
            Stopped = false
            CrashStates = 0
            Mutations = 0
        }

    let stepOn (run: Run) (step: Step, where: string) =
        if going run then
            inFlight.Value <-
                match step with
                | Do operation -> Durability.interrupted run.Model operation
                | Happen _ -> run.Model

            let after = guarded step where run

            // Fail closed means no second fdatasync either: after a failed one the kernel may
            // have dropped the dirty pages and marked them clean, so a retry that succeeds
            // proves nothing (PostgreSQL's fsyncgate).
            let after =
                if after.Fs.RetriedSyncs > 0 then
                    diverge where "a file was synced again through the handle whose fdatasync failed" after
                else
                    after

            match step, run.Phase, after.Phase, config.OnClose with
            | Do Close, Opened(Some _), Closed, Some hook when obj.ReferenceEquals(after.Fs, fs) ->
                hook fs.State after.Model
            | _ -> ()

            after
        else
            run

    let ran = steps |> List.map (fun s -> s, Step.describe s) |> List.fold stepOn start

    // Last, a clean close and a full read (from the last snapshot installed past the entries,
    // where raft would open): what every run must end with.
    let finalAt = steps |> List.choose Step.operation |> Stream.installedBy

    let ended =
        if going ran && (ran.FailedClosed || ran.Model.Created || (log ran).IsSome) then
            [ Do Close, "the final close"; Do(Open finalAt), "the final read" ]
            |> List.fold stepOn ran
        else
            ran

    // Counted before the teardown below: a power cut inside it would be neither recovered nor
    // judged, so a property that cuts at "any counted call" must never land there.
    let mutations = ended.Mutations + ended.Fs.Mutations

    log ended
    |> Option.iter (fun w ->
        (try
            w.Dispose()
         with _ ->
             ()))

    {
        Divergence = ended.Divergence
        CrashStates = ended.CrashStates
        Mutations = mutations
    }
