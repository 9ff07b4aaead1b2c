/// Crash-state exploration, as CrashMonkey does it: run a sequence once, capture the disk after
/// every mutating call, and for each captured state recover from many crash images of it,
/// judging every recovery against the model. This is the repository's main job.
module Wal.Simulation.Explorer

open System
open System.Diagnostics
open System.Threading
open FsCheck
open FsCheck.FSharp
open Wal.Model
open Wal.Oracle.Scenarios

/// The kinds of crash state judged, counted apart.
type Kind =
    /// A power cut after a mutating call; recovery opens at snapshot zero.
    | Plain
    /// A power cut after a mutating call; recovery opens at a snapshot the run saved.
    | AtSnapshot
    /// A power cut right after a clean Close.
    | AfterClose
    /// A crash image with a flipped bit or a zeroed sector in durable bytes, read by a reader
    /// and by recovery (each counts).
    | Damaged
    /// A power cut after an injected EIO or ENOSPC, or the faulted run itself.
    | Faulted

[<RequireQualifiedAccess>]
module Kind =
    let all = [ Plain; AtSnapshot; AfterClose; Damaged; Faulted ]

    let index (kind: Kind) =
        match kind with
        | Plain -> 0
        | AtSnapshot -> 1
        | AfterClose -> 2
        | Damaged -> 3
        | Faulted -> 4

    let name (kind: Kind) =
        match kind with
        | Plain -> "plain"
        | AtSnapshot -> "at snapshot"
        | AfterClose -> "after close"
        | Damaged -> "damaged"
        | Faulted -> "faults"

/// A crash state the engine recovered from in a way the model does not allow.
type Divergence =
    {
        Scenario: Scenario
        Kind: Kind
        /// The power went after this many mutating calls (of the faulted run, for faults).
        Mutation: int
        Image: CrashImage
        /// Where recovery opened, the damage, the fault: what else made the state.
        Detail: string
        Message: string
    }

    override this.ToString() =
        // A trace (wal replay runs it), the power cut and the verdict as comments after it.
        let comment (text: string) =
            text.Split('\n') |> Array.map (fun l -> "# " + l) |> String.concat "\n"

        let cut =
            comment
                $"{Kind.name this.Kind}: power cut after mutating call {this.Mutation}, image {this.Image}{this.Detail}"

        $"{this.Scenario}{cut}\n{comment this.Message}"

/// How much to explore per captured state.
type Bounds =
    {
        /// Crash images enumerated in order (each namespace prefix, each file's change prefix and
        /// torn sectors), at most this many per state.
        Enumerated: int
        /// Random sector reorderings per file, added to the enumeration.
        Reorderings: int
        /// Images whose lost sectors read as garbage, per state.
        Garbage: int
        /// Damaged crash images per state (each judged by a reader and by recovery).
        Damaged: int
        /// Runs per scenario with one injected fault (EIO on fdatasync or fsync, ENOSPC on
        /// write or fallocate) at a call chosen from the clean run's.
        FaultRuns: int
        /// Crash images per state captured after a fault fired.
        FaultImages: int
    }

let defaultBounds =
    {
        Enumerated = 24
        Reorderings = 1
        Garbage = 2
        Damaged = 1
        FaultRuns = 3
        FaultImages = 12
    }

/// A state captured during a run: the disk, what the model allows if the power goes then, and
/// whether it is the state right after a clean Close.
type Captured =
    {
        State: DiskState
        Log: DurableLog
        AfterClose: bool
    }

/// The crash states of a run with `faults` injected: the disk after each mutating call (after
/// the first fault fired, when there are faults) and right after each clean Close.
let captureWith (faults: Fault list) (scenario: Scenario) =
    let states = ResizeArray<Captured>()
    let fired = ref faults.IsEmpty

    let add afterClose state log =
        if fired.Value then
            states.Add
                {
                    State = state
                    Log = log
                    AfterClose = afterClose
                }

    let result =
        Harness.run
            { Harness.defaultConfig with
                SegmentSize = scenario.SegmentSize
                Faults = faults
                OnFault = Some(fun () -> fired.Value <- true)
                OnMutation = Some(add false)
                OnClose = Some(add true)
            }
            scenario.Steps

    List.ofSeq states, result

/// Every crash state of a scenario: the disk after each mutating call and right after each
/// clean Close, with what the model allows then.
let capture (scenario: Scenario) = captureWith [] scenario

/// The crash images explored for one state.
let imagesOf (bounds: Bounds) (state: DiskState) (seed: int) =
    Seq.append
        (CrashImage.enumerate state bounds.Reorderings bounds.Enumerated seed)
        (Seq.init bounds.Garbage (fun i -> CrashImage.random state true (seed + i)))

/// The snapshots the run saved up to now (durable or not): recovery may open at any of them.
let savedSnapshots (log: DurableLog) =
    log.Session :: log.Bases
    |> List.collect (
        List.choose (function
            | SnapshotRecord s when s <> Snapshot.zero -> Some s
            | _ -> None)
    )
    |> List.distinct

let private dispose (w: Wal.WriteAheadLog) =
    try
        w.Dispose()
    with _ ->
        ()

/// The last index a read at `at` shows the log holds: its last entry, the snapshot, or a commit
/// resting on a snapshot installed past the entries.
let private lastHeld (at: Snapshot) (c: Contents) =
    c.Entries
    |> List.tryLast
    |> Option.map _.Index
    |> Option.defaultValue 0UL
    |> max at.Index
    |> max c.State.Commit

/// A caller's mistake after recovery: a Save committing far past anything the log holds.
/// Raft's invariants refuse it, writing nothing, however much of the log the recovery read (a
/// read that starts at a later segment knows less); taken, it is a hard state the engine's own
/// read of the whole log would refuse. None when refused.
let private overCommitRefused (wal: Wal.WriteAheadLog) (last: uint64) =
    let commit = last + 1_000_000UL

    try
        wal.Save(Wal.HardState(1000UL, 1UL, commit), ReadOnlySpan<Wal.Entry>.Empty)
        Some $"after recovering, a Save committing {commit} (the log ends near {last}) was taken"
    with :? Wal.WalException as ex when ex.Kind = Wal.WalErrorKind.InvalidArgument ->
        None

/// After a recovery that read the hard state `state`, a Save of bare entries (raft saves one when
/// only the log changed) larger than a segment, so that it cuts; then a read from the new
/// segment on, as an open at a snapshot past its name or after the segments before it are
/// removed makes, must still find that hard state. Disposes `wal`. None when it does.
let private cutKeepsState
    (fs: SimulatedFileSystem)
    (options: Wal.WalOptions)
    (wal: Wal.WriteAheadLog)
    (last: uint64)
    (state: HardState)
    =
    let lastSegment () =
        fs.List Harness.Directory
        |> List.filter (fun n -> n.EndsWith ".wal")
        |> List.max

    let show (s: HardState) = $"{s.Term}/{s.Vote}/{s.Commit}"
    let before = lastSegment ()

    try
        if not (HardState.isEmpty state) then
            let data = Array.create (int (min options.SegmentSizeBytes 65536L)) 0x3Cuy
            wal.Save(Wal.HardState.Empty, [| Wal.Entry(state.Term, last + 1UL, data) |])

        dispose wal
        let after = lastSegment ()

        if HardState.isEmpty state || after = before then
            None
        else
            let at =
                {
                    Index = Convert.ToUInt64(after.Substring(17, 16), 16)
                    Term = 0UL
                }

            match Harness.recoverWith false options at with
            | Convert.Model(Read c | NotFound c), opened ->
                opened |> Option.iter dispose

                if c.State = state then
                    None
                else
                    Some
                        $"after a recovery that read state {show state}, a Save of bare entries cut segment {after}; a read from it found state {show c.State}"
            | _, opened ->
                opened |> Option.iter dispose
                None
    with :? Wal.WalException ->
        dispose wal
        None

/// Judges the engine's recovery from one crash image (its outcome `observed`, and the log it
/// left `opened`); then, as recovery must go on, saves one more entry, closes, reopens at `at` and
/// judges that read too. None when the model allows both.
let private judgeEngine
    (log: DurableLog)
    (at: Snapshot)
    (allowed: ReadOutcome list)
    (garbage: bool)
    (options: Wal.WalOptions)
    (observed: Convert.EngineOutcome)
    (opened: Wal.WriteAheadLog option)
    =
    match Harness.judge allowed garbage observed, observed, opened with
    | Some message, _, _ ->
        opened |> Option.iter dispose
        Some message
    // Raft stops at a snapshot it cannot find: nothing to go on with, though the log is left
    // open for appending, and must still refuse what raft's invariants refuse.
    | None, Convert.Model(NotFound c), Some wal when at <> Snapshot.zero ->
        let refused = overCommitRefused wal (lastHeld at c)
        dispose wal
        refused
    | None, Convert.Model outcome, Some wal ->
        match Durability.recovered at outcome log with
        | None ->
            dispose wal
            Some "no candidate explains the read"
        | Some recovered ->
            let last =
                match outcome with
                | Read c
                | NotFound c -> lastHeld at c
                | _ -> 0UL

            let term = 1000UL

            let entry: Entry =
                {
                    Term = term
                    Index = last + 1UL
                    Kind = 0
                    Data = Array.create 700 0x5Auy
                }

            let hardState: HardState =
                {
                    Term = term
                    Vote = 1UL
                    Commit = last
                }

            let save = Operation.Save(hardState, [ entry ])

            let overCommit = overCommitRefused wal last

            match overCommit with
            | Some message ->
                dispose wal
                Some message
            | None ->
                try
                    try
                        wal.Save(
                            Wal.FSharp.ModelConvert.toHardState hardState,
                            [| Wal.FSharp.ModelConvert.toEntry entry |]
                        )
                    finally
                        wal.Dispose()

                    let after = Durability.acknowledged recovered save |> Durability.synced
                    let reread, reopened = Harness.recoverWith false options at
                    reopened |> Option.iter dispose

                    Harness.judge (Durability.allowedAfterCrash at after) false reread
                    |> Option.map (fun m -> $"after recovering, saving entry {entry.Index} and reopening: {m}")
                with :? Wal.WalException as ex ->
                    Some $"after recovering, saving entry {entry.Index} failed: {ex.Kind} {ex.Message}"
    | None, _, opened ->
        opened |> Option.iter dispose
        None


/// Recovers from one crash image, opening at `at`, and judges the outcome with the engine and
/// then with RaftLog (RaftLogRecovery). None when the model allows both.
let judgeImageAt
    (segmentSize: int64)
    (state: DiskState)
    (log: DurableLog)
    (at: Snapshot)
    (allowed: ReadOutcome list)
    (image: CrashImage)
    =
    let fs = SimulatedFileSystem(CrashImage.crash state image)
    let options = Harness.optionsFor fs segmentSize
    let observed, opened = Harness.recover options at

    let garbage =
        match image.Lost with
        | Garbage _ -> true
        | OldContents -> false

    match judgeEngine log at allowed garbage options observed opened with
    | Some message -> Some message
    | None -> RaftLogRecovery.judge segmentSize state at image observed

/// Recovers from one crash image at snapshot zero and judges it (see judgeImageAt).
let judgeImage
    (segmentSize: int64)
    (state: DiskState)
    (log: DurableLog)
    (allowed: ReadOutcome list)
    (image: CrashImage)
    =
    judgeImageAt segmentSize state log Snapshot.zero allowed image

/// Crash states judged, by kind (indexed by Kind.index).
type Counts = int array

/// Judges the crash states of one run's captured states, adding to `counts`; the first
/// divergence, if any.
let private exploreStates
    (bounds: Bounds)
    (seed: int)
    (scenario: Scenario)
    (faulted: string option)
    (states: Captured list)
    (counts: Counts)
    =
    let mutable found = None

    let count (kind: Kind) n =
        counts[Kind.index kind] <- counts[Kind.index kind] + n

    let diverge kind mutation image detail message =
        found <-
            Some
                {
                    Scenario = scenario
                    Kind = kind
                    Mutation = mutation
                    Image = image
                    Detail = detail
                    Message = message
                }

    let faultDetail =
        faulted |> Option.map (fun f -> $", after fault {f}") |> Option.defaultValue ""

    states
    |> List.iteri (fun i captured ->
        if found.IsNone then
            let state, log = captured.State, captured.Log
            let stateSeed = seed + i
            let snapshots = savedSnapshots log
            let floor = Durability.installed log
            let floorAllowed = lazy (Durability.allowedAfterCrash floor log)

            let images =
                match faulted with
                | Some _ ->
                    imagesOf
                        { bounds with
                            Enumerated = bounds.FaultImages
                            Reorderings = 0
                            Garbage = 0
                        }
                        state
                        stateSeed
                | None -> imagesOf bounds state stateSeed

            images
            |> Seq.iteri (fun k image ->
                if found.IsNone then
                    // Every other image recovers at a snapshot the run saved, when it saved one.
                    let at =
                        match snapshots |> List.filter (fun s -> s.Index >= floor.Index) with
                        | openable when k % 2 = 1 && not openable.IsEmpty ->
                            openable[(stateSeed + k) % openable.Length]
                        | _ -> floor

                    let kind =
                        match faulted with
                        | Some _ -> Faulted
                        | None when captured.AfterClose -> AfterClose
                        | None when at <> Snapshot.zero -> AtSnapshot
                        | None -> Plain

                    count kind 1

                    let allowed =
                        if at = floor then
                            floorAllowed.Force()
                        else
                            Durability.allowedAfterCrash at log

                    match judgeImageAt scenario.SegmentSize state log at allowed image with
                    | Some message ->
                        let detail =
                            if at = Snapshot.zero then
                                faultDetail
                            else
                                $", recovery opened at snapshot {at.Index}/{at.Term}{faultDetail}"

                        diverge kind (i + 1) image detail message
                    | None -> ())

            // A recovery that starts at a later segment knows less of the log than a read of
            // it all: opened at the index a later segment is named for (as at a snapshot whose
            // record the crash took), the log must still refuse a commit past what it holds.
            if faulted.IsNone && found.IsNone then
                let image = CrashImage.random state false (stateSeed * 17)
                let fs = SimulatedFileSystem(CrashImage.crash state image)

                let later =
                    fs.List Harness.Directory
                    |> List.filter (fun n -> n.EndsWith ".wal" && not (n.StartsWith "0000000000000000-"))
                    |> List.sort

                if not later.IsEmpty then
                    let name = later[stateSeed % later.Length]

                    let at =
                        {
                            Index = Convert.ToUInt64(name.Substring(17, 16), 16)
                            Term = 0UL
                        }

                    count AtSnapshot 1

                    let options = Harness.optionsFor fs scenario.SegmentSize

                    match Harness.recover options at with
                    | Convert.Model(Read c | NotFound c), Some wal ->
                        let problem =
                            match overCommitRefused wal (lastHeld at c) with
                            | Some refused ->
                                dispose wal
                                Some refused
                            | None -> cutKeepsState fs options wal (lastHeld at c) c.State

                        problem
                        |> Option.iter (
                            diverge AtSnapshot (i + 1) image $", recovery opened at {at.Index}, where {name} begins"
                        )
                    | _, opened -> opened |> Option.iter dispose

            if faulted.IsNone then
                for d in 0 .. bounds.Damaged - 1 do
                    if found.IsNone then
                        let damageSeed = stateSeed * 31 + d
                        let image = CrashImage.random state false damageSeed
                        let crashed = CrashImage.crash state image

                        match Damage.damage crashed damageSeed with
                        | None -> ()
                        | Some(damaged, what) ->
                            count Damaged 2
                            let blind = Damage.formatBlind crashed damaged

                            match Damage.judge scenario.SegmentSize floor (floorAllowed.Force()) blind damaged with
                            | Damage.Broken message -> diverge Damaged (i + 1) image $", then {what}" message
                            | Damage.Kept
                            | Damage.Blind -> ())

    found

/// The faults tried on a scenario: EIO on the nth fdatasync or fsync, ENOSPC on the nth write or
/// fallocate, n chosen from the calls the clean run made.
let private faultsFor (bounds: Bounds) (seed: int) (mutations: int) =
    let random = Random(seed * 7919 + 17)

    [
        for _ in 1 .. bounds.FaultRuns do
            let call =
                match random.Next 5 with
                | 0
                | 1 -> DataSyncCall
                | 2
                | 3 -> WriteCall
                | _ -> PreallocateCall

            let bound =
                match call with
                | PreallocateCall -> 4
                | _ -> max 1 mutations

            NthCall(call, 1 + random.Next bound)
    ]

/// Explores every captured crash state of a scenario within the bounds, with damage and
/// faults; returns the crash states judged, by kind, and the first divergence.
let exploreScenarioCounted (bounds: Bounds) (seed: int) (scenario: Scenario) : Counts * Divergence option =
    let counts: Counts = Array.zeroCreate Kind.all.Length
    let states, clean = capture scenario

    let failed kind detail message =
        Some
            {
                Scenario = scenario
                Kind = kind
                Mutation = 0
                Image =
                    {
                        NamespaceKept = 0
                        Files = Map.empty
                        Lost = OldContents
                    }
                Detail = detail
                Message = message
            }

    match clean.Divergence with
    | Some message ->
        counts[Kind.index Plain] <- 1
        counts, failed Plain "" $"without a crash: {message}"
    | None ->
        // The same run with zero-filled segments (WalOptions.ZeroFillSegments): whole, with a
        // power cut, and with a fault early, where the fills are (ENOSPC on a write or EIO on an
        // fdatasync, by the seed). The fill writes zeros only where the log holds none, so every
        // verdict of the model stands for it too; a fill over records would lose acknowledged
        // entries. A failed fill fails the call that needed the segment (Create, the Save that
        // cuts, a write open), as a failed fallocate does, and must lose nothing acknowledged.
        let crashAt = 1 + seed % max 1 clean.Mutations

        let early =
            if seed % 2 = 0 then
                NthCall(WriteCall, 1 + seed % 8)
            else
                NthCall(DataSyncCall, 1 + seed % 4)

        let zeroFillFailure =
            [
                Plain, None, [], ", zero-filled segments"
                Plain, Some crashAt, [], $", zero-filled segments, power cut after mutation {crashAt}"
                Faulted, None, [ early ], $", zero-filled segments, fault {early}"
            ]
            |> List.tryPick (fun (kind, crashAfter, faults, detail) ->
                if crashAfter.IsSome || not faults.IsEmpty then
                    counts[Kind.index kind] <- counts[Kind.index kind] + 1

                let run =
                    Harness.run
                        { Harness.defaultConfig with
                            SegmentSize = scenario.SegmentSize
                            ZeroFill = true
                            CrashAfter = crashAfter
                            CrashImage = seed
                            Faults = faults
                        }
                        scenario.Steps

                run.Divergence |> Option.map (fun message -> kind, detail, message))

        let mutable found =
            match zeroFillFailure with
            | Some(kind, detail, message) -> failed kind detail $"with{detail.TrimStart(',')}: {message}"
            | None -> None

        if found.IsNone then
            found <- exploreStates bounds seed scenario None states counts

        for fault in faultsFor bounds seed clean.Mutations do
            if found.IsNone then
                let faultStates, faultedRun = captureWith [ fault ] scenario
                counts[Kind.index Faulted] <- counts[Kind.index Faulted] + 1

                match faultedRun.Divergence with
                | Some message ->
                    found <-
                        failed Faulted $", fault {fault}" $"with fault {fault}, without a later power cut: {message}"
                | None -> found <- exploreStates bounds seed scenario (Some(string fault)) faultStates counts

        counts, found

/// Explores every captured crash state of a scenario within the bounds; returns how many states
/// were judged and the first divergence.
let exploreScenario (bounds: Bounds) (seed: int) (scenario: Scenario) : int * Divergence option =
    let counts, found = exploreScenarioCounted bounds seed scenario
    Array.sum counts, found

/// Shrinks a divergent scenario by dropping operations while some crash state still diverges.
let shrinkDivergence (bounds: Bounds) (seed: int) (found: Divergence) =
    let rec go (current: Divergence) =
        let smaller =
            shrink current.Scenario
            |> Seq.tryPick (fun candidate -> exploreScenario bounds seed candidate |> snd)

        match smaller with
        | Some d -> go d
        | None -> current

    go found

/// What an exploration did.
type Summary =
    {
        Sequences: int
        CrashStates: int
        /// Crash states judged, by kind (indexed by Kind.index).
        ByKind: Counts
        Divergences: int
        Elapsed: TimeSpan
        Seed: int
        First: Divergence option
    }

    member this.StatesPerSecond =
        float this.CrashStates / max this.Elapsed.TotalSeconds 1e-9

/// Explores crash states of generated scenarios until `budget` states have been judged or a
/// divergence is found, on `threads` threads; scenario i is generated from `seed + i`, so a run
/// is reproducible by its seed.
let explore (budget: int) (seed: int) (threads: int) (bounds: Bounds) (progress: int -> int -> unit) : Summary =
    let clock = Stopwatch.StartNew()
    let mutable states = 0
    let byKind: Counts = Array.zeroCreate Kind.all.Length
    let mutable sequences = 0
    let mutable next = -1
    let mutable first: Divergence option = None
    let gate = obj ()
    let generator = scenario false

    let worker () =
        while Volatile.Read(&states) < budget && (lock gate (fun () -> first.IsNone)) do
            let i = Interlocked.Increment(&next)
            let scenarioSeed = seed + i
            let rnd = Rnd(uint64 scenarioSeed, 0x9E3779B97F4A7C15UL)
            let scenario = (Gen.sampleWithSeed rnd 30 1 generator)[0]
            let counts, found = exploreScenarioCounted bounds scenarioSeed scenario

            for k in 0 .. counts.Length - 1 do
                Interlocked.Add(&byKind[k], counts[k]) |> ignore

            let total = Interlocked.Add(&states, Array.sum counts)
            let count = Interlocked.Increment(&sequences)

            match found with
            | Some d ->
                lock gate (fun () ->
                    if first.IsNone then
                        first <- Some d)
            | None -> ()

            if count % 50 = 0 then
                progress count total

    let workers = Array.init threads (fun _ -> Thread(worker, 16 * 1024 * 1024))

    for w in workers do
        w.Start()

    for w in workers do
        w.Join()

    clock.Stop()

    {
        Sequences = sequences
        CrashStates = states
        ByKind = byKind
        Divergences = (if first.IsSome then 1 else 0)
        Elapsed = clock.Elapsed
        Seed = seed
        First = first |> Option.map (shrinkDivergence bounds seed)
    }
