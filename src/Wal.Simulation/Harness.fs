/// Runs operation sequences on the engine over the simulated disk, with power cuts between
/// operations and inside them, injected faults and bit rot, and judges every ReadAll against the
/// model's durability rules.
module Wal.Simulation.Harness

open System
open Wal
open Wal.Model
open Wal.Simulation.SimulatedDisk
open Wal.Simulation.Convert

/// The log's directory on the simulated disk.
[<Literal>]
let Directory = "/data/wal"

/// How a run is set up.
type RunConfig =
    {
        SegmentSize: int64
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
    }

let defaultConfig =
    {
        SegmentSize = 4096L
        CrashAfter = None
        CrashImage = 0
        RecoverAt = Snapshot.zero
        Garbage = false
        Faults = []
        OnMutation = None
    }

/// What a run found.
type RunResult =
    {
        Divergence: string option
        /// How many crash states were recovered and judged.
        CrashStates: int
        /// Mutating calls made, over all disks of the run.
        Mutations: int
    }

let rec isPowerLoss (ex: exn) =
    match ex with
    | null -> false
    | PowerLoss -> true
    | _ -> isPowerLoss ex.InnerException

let optionsFor (fs: SimulatedFileSystem) (segmentSize: int64) =
    WalOptions(FileSystem = fs, SegmentSizeBytes = segmentSize, PrepareSegmentsInBackground = false)

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
                Ok(WriteAheadLog.Open(Directory, toSnapshot at, options))
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
    | Save(state, entries) -> wal.Save(toHardState state, entries |> List.map toEntry |> Array.ofList)
    | SaveSnapshot s -> wal.SaveSnapshot(toSnapshot s)
    | Sync -> wal.Sync()
    | ReleaseLockTo i -> wal.ReleaseLockTo i
    | Create _
    | Reopen _
    | OpenForRead _
    | Repair
    | Crash _ -> invalidOp "not a log operation"

let private isWrite (operation: Operation) =
    match operation with
    | Save(state, entries) -> not (HardState.isEmpty state && entries.IsEmpty)
    | SaveSnapshot _
    | Sync -> true
    | _ -> false

/// Runs the operations, judging every recovery and reopen against the model.
let run (config: RunConfig) (operations: Operation list) : RunResult =
    let mutable fs = SimulatedFileSystem(SimulatedDisk.empty)
    fs.CrashAfter <- config.CrashAfter
    fs.Faults <- config.Faults
    let mutable wal: WriteAheadLog option = None
    let mutable model = Durability.none
    let mutable failedClosed = false
    let mutable divergence = None
    let mutable stopped = false
    let mutable crashStates = 0
    let mutable mutations = 0
    // What the model allows if the power goes now: the operation in flight may have written.
    let mutable inFlight = model

    match config.OnMutation with
    | Some hook -> fs.Observe <- Some(fun _ state -> hook state inFlight)
    | None -> ()

    let diverge (where: string) (message: string) =
        if divergence.IsNone then
            divergence <- Some $"after `{where}`: {message}"

    /// Judges a read at `at`, and moves the model to what it explains.
    let settle (where: string) (at: Snapshot) (observed: EngineOutcome) (opened: WriteAheadLog option) =
        match judge (Durability.allowedAfterCrash at model) config.Garbage observed with
        | Some message -> diverge where message
        | None ->
            match observed with
            | Model o ->
                match Durability.recovered at o model with
                | Some next ->
                    model <- next
                    wal <- opened
                    // A log opened anew has not failed; only the handle that saw the error refuses writes.
                    failedClosed <- false
                | None -> diverge where "no candidate explains the read"
            | OtherError _ ->
                // Garbage made the log unreadable, which the model allows; nothing more to check.
                stopped <- true

    let powerCut (where: string) (image: int) (at: Snapshot) =
        crashStates <- crashStates + 1
        mutations <- mutations + fs.Mutations
        let survivor = crash fs.State (randomImage fs.State config.Garbage image)
        fs <- SimulatedFileSystem(survivor)
        wal <- None
        failedClosed <- false
        let observed, opened = recover (optionsFor fs config.SegmentSize) at
        settle where at observed opened

    let reopen (where: string) (at: Snapshot) =
        let observed, opened =
            match recoverWith false (optionsFor fs config.SegmentSize) at with
            // An injected fault may fail the reopen itself (ENOSPC while zeroing the tail): a
            // clear error, after which the log must still open.
            | OtherError(WalErrorKind.Io, _), _ when not config.Faults.IsEmpty && not fs.Dead ->
                recoverWith false (optionsFor fs config.SegmentSize) at
            | result -> result

        if fs.Dead then
            powerCut where config.CrashImage config.RecoverAt
        else
            settle where at observed opened

    let step (operation: Operation) =
        let where = Operation.describe operation

        match operation, wal with
        | Crash(image, at), _ -> powerCut where image at
        | Create metadata, None when not model.Created ->
            try
                wal <- Some(WriteAheadLog.Create(Directory, ReadOnlyMemory metadata, optionsFor fs config.SegmentSize))

                model <- Durability.acknowledged model operation
            with
            | ex when isPowerLoss ex ->
                model <- Durability.interrupted model operation
                powerCut where config.CrashImage config.RecoverAt
            | :? WalException as ex when not config.Faults.IsEmpty && ex.Kind = WalErrorKind.Io ->
                model <- Durability.interrupted model operation
                failedClosed <- true
        | Create _, _ -> ()
        // After a failed write or sync the page cache cannot be trusted (PostgreSQL's
        // fsyncgate): what a reader sees may never reach the disk. Reopening is crash
        // recovery, as PostgreSQL's PANIC makes it.
        | Reopen at, _ when failedClosed -> powerCut where config.CrashImage at
        | Reopen at, Some log ->
            try
                log.Dispose()
                model <- Durability.synced model
                reopen where at
            with
            | ex when isPowerLoss ex -> powerCut where config.CrashImage config.RecoverAt
            | :? WalException as ex when not config.Faults.IsEmpty && ex.Kind = WalErrorKind.Io ->
                // The close's sync failed: as after any failed sync, reopening is crash recovery.
                failedClosed <- true
                powerCut where config.CrashImage at
        | Reopen at, None -> reopen where at
        | OpenForRead at, _ ->
            // A reader beside the writer sees what was written out, which may lag behind what
            // was acknowledged (the page writer buffers commit-only saves): any candidate.
            let observed =
                try
                    use reader =
                        WriteAheadLog.OpenForRead(Directory, toSnapshot at, optionsFor fs config.SegmentSize)

                    readOutcome reader
                with :? WalException as ex ->
                    if ex.Kind = WalErrorKind.FileNotFound then
                        Model NoLog
                    else
                        OtherError(ex.Kind, ex.Message)

            if fs.Dead then
                powerCut where config.CrashImage config.RecoverAt
            else
                judge (Durability.allowedAfterCrash at model) false observed
                |> Option.iter (diverge where)
        | Repair, _ when failedClosed -> powerCut where config.CrashImage Snapshot.zero
        | Repair, _ when not model.Created -> ()
        | Repair, log ->
            try
                log |> Option.iter (fun l -> l.Dispose())
                model <- Durability.synced model

                match WalDirectory.Repair(Directory, optionsFor fs config.SegmentSize) with
                | RepairOutcome.NothingToRepair -> reopen where Snapshot.zero
                | outcome -> diverge where $"Repair of a cleanly closed log said {outcome}"
            with
            | ex when isPowerLoss ex -> powerCut where config.CrashImage config.RecoverAt
            | :? WalException as ex when not config.Faults.IsEmpty && ex.Kind = WalErrorKind.Io ->
                failedClosed <- true
                powerCut where config.CrashImage Snapshot.zero
            | :? WalException as ex -> diverge where $"Repair failed: {ex.Kind} {ex.Message}"
        | _, None -> ()
        | _, Some log ->
            try
                perform log operation

                if failedClosed && isWrite operation then
                    diverge where "a write was acknowledged after an earlier write or sync failed"

                model <- Durability.acknowledged model operation
            with
            | ex when isPowerLoss ex ->
                model <- Durability.interrupted model operation
                powerCut where config.CrashImage config.RecoverAt
            | :? WalException as ex when failedClosed && ex.Kind = WalErrorKind.Failed -> ()
            | :? WalException as ex when not config.Faults.IsEmpty && ex.Kind = WalErrorKind.Io ->
                model <- Durability.interrupted model operation
                failedClosed <- true
            | :? WalException as ex -> diverge where $"unexpected {ex.Kind}: {ex.Message}"

    for operation in operations do
        if divergence.IsNone && not stopped then
            inFlight <- Durability.interrupted model operation

            try
                step operation
            with ex when isPowerLoss ex ->
                // The power went inside a call that swallowed it (the pipeline preparing the next
                // segment in the background, say) and the next call found the disk dead.
                model <- Durability.interrupted model operation
                powerCut (Operation.describe operation) config.CrashImage config.RecoverAt

    // Last, a clean close and a full read: what every run must end with.
    if divergence.IsNone && not stopped then
        inFlight <- model

        match wal with
        | _ when failedClosed -> powerCut "the final read" config.CrashImage Snapshot.zero
        | Some log ->
            try
                log.Dispose()
                model <- Durability.synced model
                reopen "the final read" Snapshot.zero
            with
            | ex when isPowerLoss ex -> powerCut "the final close" config.CrashImage config.RecoverAt
            | :? WalException as ex when not config.Faults.IsEmpty && ex.Kind = WalErrorKind.Io ->
                failedClosed <- true
                powerCut "the final close" config.CrashImage Snapshot.zero
        | None when model.Created -> reopen "the final read" Snapshot.zero
        | None -> ()

    wal
    |> Option.iter (fun w ->
        (try
            w.Dispose()
         with _ ->
             ()))

    {
        Divergence = divergence
        CrashStates = crashStates
        Mutations = mutations + fs.Mutations
    }

/// Whether a flip at a file offset is one etcd's format cannot detect: the flip hits a record's
/// type byte (frame start + 8 for the length word + 1 for the type's tag), or turns a length word
/// into zero.
let private formatCannotSee (before: DiskState) (after: DiskState) (path: string) (offset: int64) =
    let contentOf (state: DiskState) =
        match state.Durable.TryFind path with
        | Some(FileNode id) -> Some state.Inodes[id].Durable
        | _ -> None

    match contentOf before, contentOf after with
    | Some content, Some rotten ->
        let word = Array.zeroCreate<byte> 8

        let wordAt (c: Content) (position: int64) =
            Content.read c position (Span word) |> ignore
            BitConverter.ToUInt64(word, 0)

        let rec walk (position: int64) =
            if position + 8L > content.Length then
                false
            else
                let value = wordAt content position

                if value = 0UL then
                    false
                elif offset = position + 9L then
                    true
                elif offset >= position && offset < position + 8L then
                    wordAt rotten position = 0UL
                else
                    let length = int64 (value &&& 0x00FFFFFFFFFFFFFFUL)

                    let pad =
                        if value &&& 0x8000000000000000UL <> 0UL then
                            int64 ((value >>> 56) &&& 7UL)
                        else
                            0L

                    let next = position + 8L + length + pad
                    next > position && next <= content.Length && offset >= next && walk next

        walk 0L
    | _ -> false

/// Runs the operations cleanly, closes the log, flips one durable bit (chosen by `seed`) and
/// reads the log in write mode: the result must be everything written, or a typed error; never
/// other entries. None when it is.
let rotAndRead (segmentSize: int64) (operations: Operation list) (seed: int) : string option =
    let fs = SimulatedFileSystem(SimulatedDisk.empty)
    let options = optionsFor fs segmentSize
    let mutable wal: WriteAheadLog option = None
    let mutable model = Durability.none

    for operation in operations do
        match operation, wal with
        | Create m, None ->
            wal <- Some(WriteAheadLog.Create(Directory, ReadOnlyMemory m, options))
            model <- Durability.acknowledged model operation
        | (Save _ | SaveSnapshot _ | Sync | ReleaseLockTo _), Some log ->
            perform log operation
            model <- Durability.acknowledged model operation
        | _ -> ()

    wal |> Option.iter (fun w -> w.Dispose())
    let model = Durability.synced model

    match rot fs.State seed with
    | None -> None
    | Some(rotten, (path, offset)) ->
        let rotFs = SimulatedFileSystem(rotten)

        let observed =
            try
                use log =
                    WriteAheadLog.Open(Directory, Wal.Snapshot.Zero, optionsFor rotFs segmentSize)

                readOutcome log
            with :? WalException as ex ->
                OtherError(ex.Kind, ex.Message)

        match observed with
        | OtherError((WalErrorKind.CrcMismatch | WalErrorKind.CorruptRecord | WalErrorKind.RecordTooLarge | WalErrorKind.UnexpectedEof),
                     _)
        | Model(Failed _) -> None
        // Limits of etcd's format, not of the engine: a record's type lies outside its CRC (which
        // covers the data alone), so a flip there can turn an entry into a hard state; and a flip
        // that zeroes the last record's length word reads as the end of the data.
        | _ when formatCannotSee fs.State rotten path offset -> None
        | _ ->
            judge (Durability.allowedAfterCrash Snapshot.zero model) false observed
            |> Option.map (fun m -> $"bit rot at {path} byte {offset}: {m}")
