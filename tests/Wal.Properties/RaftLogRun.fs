/// A run of RaftLog on the simulated disk, judged against the durability model after every
/// operation and every recovery: the log's whole range, first and last index, terms and hard
/// state against the model's entries (RaftLogProperties drives it with generated runs).
module Wal.Properties.RaftLogRun

open System
open System.Threading
open Expecto
open FsCheck
open FsCheck.FSharp
open Wal
open Wal.Model
open Wal.Simulation
open Wal.FSharp
open Wal.Oracle.Scenarios
open Wal.Properties.Support

[<Literal>]
let Dir = "/data/wal"

/// What the log shows over its whole range, in the model's terms.
type private Shown =
    {
        First: uint64
        Last: uint64
        Entries: Wal.Model.Entry list
        State: Wal.Model.HardState
        Metadata: byte[]
    }

let private show (log: RaftLog) =
    let first, last = log.FirstIndex, log.LastIndex

    {
        First = first
        Last = last
        Entries =
            if last >= first then
                log.GetEntries(first, last + 1UL) |> Seq.map ModelConvert.ofEntry |> List.ofSeq
            else
                []
        State = ModelConvert.ofHardState log.HardState
        Metadata = log.Metadata.ToArray()
    }

/// Everything the log answers agrees with `expected`, the model's entries after `compacted` (whose term is `compactedTerm`); the first disagreement otherwise.
let private agrees (log: RaftLog) (contents: Contents) (compacted: uint64) (compactedTerm: uint64) =
    let expected = contents.Entries |> List.filter (fun e -> e.Index > compacted)
    let shown = show log

    let lastExpected =
        match List.tryLast expected with
        | Some e -> e.Index
        | None -> compacted

    let problems =
        [
            if shown.First <> compacted + 1UL then
                yield $"FirstIndex {shown.First}, expected {compacted + 1UL}"
            if shown.Last <> lastExpected then
                yield $"LastIndex {shown.Last}, expected {lastExpected}"
            if shown.Entries <> expected then
                let describe (es: Wal.Model.Entry list) =
                    es
                    |> List.map (fun e -> $"{e.Term}/{e.Index}:{e.Data.Length}B")
                    |> String.concat " "

                yield $"entries [{describe shown.Entries}], expected [{describe expected}]"
            if shown.State <> contents.State then
                yield $"hard state {shown.State}, expected {contents.State}"
            if shown.Metadata <> contents.Metadata then
                yield "metadata differs"
            if log.Term compacted <> compactedTerm then
                yield $"Term({compacted}) = {log.Term compacted}, expected {compactedTerm}"
            for e in expected do
                if log.Term e.Index <> e.Term then
                    yield $"Term({e.Index}) = {log.Term e.Index}, expected {e.Term}"
            // raft's size limit: the first entry always, then as many as fit, each counted as
            // its raftpb.Entry encoding (three varint fields, and the data field when there is data).
            if expected.Length > 1 then
                let limit = uint64 (expected.Head.Data.Length + 20)
                let limited = log.GetEntries(shown.First, shown.Last + 1UL, limit)

                let varintSize (v: uint64) =
                    Seq.unfold (fun x -> if x >= 0x80UL then Some((), x >>> 7) else None) v
                    |> Seq.length
                    |> (+) 1

                let encodedSize (e: Wal.Model.Entry) =
                    3
                    + varintSize (uint64 (int64 e.Kind))
                    + varintSize e.Term
                    + varintSize e.Index
                    + (if e.Data.Length = 0 then
                           0
                       else
                           1 + varintSize (uint64 e.Data.Length) + e.Data.Length)

                let fits =
                    expected
                    |> List.scan (fun total e -> total + uint64 (encodedSize e)) 0UL
                    |> List.tail
                    |> List.takeWhile (fun total -> total <= limit)
                    |> List.length
                    |> max 1

                if
                    limited.Count <> fits
                    || (limited |> Seq.map ModelConvert.ofEntry |> List.ofSeq)
                       <> List.take fits expected
                then
                    yield $"GetEntries with a limit of {limit} bytes gave {limited.Count} entries, expected {fits}"
        ]

    List.tryHead problems


/// A run of RaftLog on the simulated disk, judged against the durability model.
type private Run(config: Harness.RunConfig) =
    let mutable fs = SimulatedFileSystem(DiskState.empty)
    let mutable log: RaftLog option = None
    let mutable model = Durability.none
    let mutable closed = false
    let mutable crashed = false
    // The snapshot the log was opened at, and where it is compacted to (with that entry's term).
    let mutable at = Snapshot.zero
    let mutable compacted = (0UL, 0UL)
    // Segments below the one an open at this snapshot starts from may be gone: opens go no lower.
    let mutable floor = Snapshot.zero
    // The floor before an install in progress, whose record a power cut may take.
    let mutable beforeInstall: Snapshot option = None
    // The live log as records: what it started from (a Create's records; after an open, what the
    // open read; after an install, the install alone) and then the session's records from
    // `liveFrom` on. Not every record written: the entries an install drops, or an open does not
    // read, are not the log's any more, though ReadAll over every record may return them.
    let mutable liveBase: Record list = []
    let mutable liveFrom = 0
    // What the log showed before a clean close, at the snapshot it was at: an open there finds the same.
    let mutable beforeClose: (Snapshot * Wal.Model.ReadOutcome) option = None
    let mutable divergence: string option = None
    let mutable stopped = false
    let mutable crashStates = 0

    do fs.CrashAfter <- config.CrashAfter

    let options () =
        Harness.optionsFor fs config.SegmentSize

    let diverge (where: string) (message: string) =
        if divergence.IsNone then
            divergence <- Some $"after `{where}`: {message}"

    let isModelError (kind: WalErrorKind) =
        match kind with
        | WalErrorKind.SnapshotNotFound
        | WalErrorKind.SnapshotMismatch
        | WalErrorKind.MetadataConflict
        | WalErrorKind.SliceOutOfRange -> true
        | _ -> false

    /// The model's contents of the live log.
    let live () =
        Stream.readAll at (liveBase @ List.skip liveFrom model.Session)

    /// The live log starts afresh from `records` (the session's records so far are in them).
    let startLive (records: Record list) =
        liveBase <- records
        liveFrom <- model.Session.Length

    let check (where: string) =
        match log, live () with
        | Some l, Read contents ->
            match agrees l contents (fst compacted) (snd compacted) with
            | Some problem -> diverge where problem
            | None -> ()
        | Some _, other -> diverge where $"the model reads {ReadOutcome.describe other} from a live log"
        | None, _ -> ()

    /// Opens at `wanted` (or the floor, when the files below it may be gone), with a Repair on a
    /// torn tail after a power cut; judges what it shows against what the model allows.
    let rec recover (where: string) (wanted: Snapshot) (repair: bool) =
        let target = if wanted.Index < floor.Index then floor else wanted
        let allowed = Durability.allowedAfterCrash target model

        let opened =
            try
                Ok(RaftLog.Open(Dir, ModelConvert.toSnapshot target, options ()))
            with :? WalException as ex when not (Harness.isPowerLoss ex) ->
                Error ex

        match opened with
        | Ok l ->
            let observed =
                Read
                    {
                        Metadata = l.Metadata.ToArray()
                        State = ModelConvert.ofHardState l.HardState
                        Entries = (show l).Entries
                    }

            if not (List.contains observed allowed) then
                l.Dispose()

                diverge
                    where
                    $"RaftLog opened at {target.Index} shows {ReadOutcome.describe observed}, where the model allows {allowed |> List.map ReadOutcome.describe}"
            else
                match beforeClose with
                | Some(snapshot, shown) when not crashed && snapshot = target && shown <> observed ->
                    diverge
                        where
                        $"RaftLog opened at {target.Index} after a clean close shows {ReadOutcome.describe observed}, where before the close it showed {ReadOutcome.describe shown}"
                | _ -> ()

                match Durability.recovered target observed model with
                | Some next ->
                    model <- next

                    match observed with
                    | Read c ->
                        startLive (
                            [ Metadata c.Metadata; State c.State; SnapshotRecord target ]
                            @ List.map EntryRecord c.Entries
                        )
                    | _ -> ()

                    log <- Some l
                    at <- target
                    compacted <- (target.Index, target.Term)
                    closed <- false
                    beforeClose <- None
                    crashed <- false
                | None -> diverge where "no candidate explains the read"
        | Error ex when
            ex.Kind = WalErrorKind.FileNotFound
            && not model.Created
            && List.contains NoLog allowed
            ->
            model <- Durability.empty model.Rule
            closed <- false
            crashed <- false
        | Error ex when ex.Kind = WalErrorKind.UnexpectedEof && repair ->
            WalDirectory.Repair(Dir, options ()) |> ignore
            recover where wanted false
        | Error ex when
            ex.Kind = WalErrorKind.SnapshotNotFound
            && target = floor
            && beforeInstall.IsSome
            && allowed
               |> List.exists (function
                   | NotFound _ -> true
                   | _ -> false)
            ->
            // The power went inside the install, before its record was durable: nothing was
            // removed, and the floor is the one before it.
            floor <- beforeInstall.Value
            beforeInstall <- None
            recover where wanted repair
        | Error ex when isModelError ex.Kind && target <> floor ->
            // The snapshot asked for may be lost or mismatched, as the model allows: start from the floor.
            let kind =
                match ex.Kind with
                | WalErrorKind.SnapshotMismatch -> Some(Failed SnapshotMismatch)
                | WalErrorKind.MetadataConflict -> Some(Failed MetadataConflict)
                | WalErrorKind.SliceOutOfRange -> Some(Failed SliceOutOfRange)
                | _ -> None

            let explained =
                allowed
                |> List.exists (fun o ->
                    match o, kind with
                    | NotFound _, None -> true
                    | o, Some k -> o = k
                    | _ -> false)

            if explained then
                recover where floor repair
            else
                diverge where $"RaftLog.Open at {target.Index} failed with {ex.Kind}, which the model does not allow"
        | Error ex when isModelError ex.Kind ->
            if
                List.contains (Failed SliceOutOfRange) allowed
                || List.contains (Failed MetadataConflict) allowed
            then
                stopped <- true
            else
                diverge where $"RaftLog.Open at the floor {target.Index} failed with {ex.Kind}: {ex.Message}"
        | Error ex -> diverge where $"RaftLog.Open at {target.Index} failed with {ex.Kind}: {ex.Message}"

    let lose (image: int) =
        crashStates <- crashStates + 1
        fs <- SimulatedFileSystem(CrashImage.crash fs.State (CrashImage.random fs.State false image))
        log <- None
        crashed <- true

    let act (step: Step) (where: string) =
        match step, log with
        | Happen(HarnessEvent.PowerLoss image), _ -> lose (defaultArg image config.CrashImage)
        | Do(Create metadata as op), None when not model.Created && not crashed && not closed ->
            log <- Some(RaftLog.Create(Dir, ReadOnlyMemory metadata, options ()))
            model <- Durability.acknowledged model op
            startLive (Stream.create metadata)
            check where
        | Do(Save(state, entries) as op), Some l ->
            let first = entries |> List.tryHead |> Option.map (fun e -> e.Index)

            match first with
            | Some f when f > l.LastIndex + 1UL || f <= fst compacted ->
                // raft never asks this; the log refuses it and writes nothing.
                match
                    errorKind (fun () ->
                        l.Append(
                            entries |> List.map ModelConvert.toEntry |> Array.ofList,
                            ModelConvert.toHardState state
                        ))
                with
                | Some WalErrorKind.InvalidArgument -> ()
                | other -> diverge where $"an Append leaving a gap or below the start gave {other}"
            | _ ->
                let refused =
                    try
                        l.Append(
                            entries |> List.map ModelConvert.toEntry |> Array.ofList,
                            ModelConvert.toHardState state
                        )

                        false
                    // After a crash the generator asks for what raft would not (it does not know
                    // what the crash took): refused whole, as the engine's harness allows.
                    with :? WalException as ex when
                        ex.Kind = WalErrorKind.InvalidArgument && Harness.refusable (Do op) model ->
                        true

                if not refused then
                    model <- Durability.acknowledged model op
                    check where
        | Do(SaveSnapshot s as op), Some l ->
            // Past the last index, a follower's install: the log starts after it, as if opened there.
            let installs = s.Index > l.LastIndex

            // The segments before it go once it is recorded: opens go no lower.
            if installs then
                beforeInstall <- Some floor
                floor <- s

            let shown = live ()
            l.SaveSnapshot(ModelConvert.toSnapshot s)
            beforeInstall <- None
            model <- Durability.acknowledged model op

            if installs then
                // raft drops every entry with the install: the log is the snapshot alone, with the
                // metadata and hard state it had.
                match shown with
                | Read c -> startLive [ Metadata c.Metadata; State c.State; SnapshotRecord s ]
                | other -> diverge where $"the model read {ReadOutcome.describe other} from a live log"

                at <- s
                compacted <- (s.Index, s.Term)

            check where
        | Do Sync, Some l ->
            l.Sync()
            model <- Durability.synced model
        | Do(ReleaseLockTo i), Some l ->
            let target = min i (min l.Snapshot.Index l.LastIndex)

            if target > fst compacted then
                let term = l.Term target
                floor <- ModelConvert.ofSnapshot l.Snapshot
                l.CompactTo target
                compacted <- (target, term)
                check where
        | Do Close, Some l ->
            beforeClose <- Some(at, live ())
            l.Dispose()
            log <- None
            closed <- true
            model <- Durability.synced model
        | Do Repair, None when closed ->
            match WalDirectory.Repair(Dir, options ()) with
            | RepairOutcome.NothingToRepair -> ()
            | outcome -> diverge where $"Repair of a cleanly closed log said {outcome}"
        | Do(Open s), None when closed -> recover where s false
        | Do(Open s), None when crashed -> recover where s true
        | _ -> ()

    member _.Step(step: Step) =
        if divergence.IsNone && not stopped then
            let where = Step.describe step

            try
                act step where
            with
            | ex when Harness.isPowerLoss ex ->
                match step with
                | Do operation -> model <- Durability.interrupted model operation
                | Happen _ -> ()

                lose config.CrashImage
                recover where floor true
            | :? WalException as ex -> diverge where $"unexpected {ex.Kind}: {ex.Message}"

    /// A clean close and an open at the floor: what every run ends with.
    member this.Finish() =
        if divergence.IsNone && not stopped && (model.Created || log.IsSome) then
            this.Step(Do Close)
            this.Step(Do(Open floor))

        log |> Option.iter (fun l -> l.Dispose())

    member _.Divergence = divergence
    member _.CrashStates = crashStates
    member _.Mutations = fs.Mutations

/// Runs the steps on RaftLog; the first divergence, the crash states judged and the mutating calls made.
let run (config: Harness.RunConfig) (steps: Step list) =
    let run = Run(config)

    for step in steps do
        run.Step step

    let mutations = run.Mutations
    run.Finish()
    run.Divergence, run.CrashStates, mutations
