/// RaftLog against the model: generated raft-like runs (Wal.Oracle's scenarios, power cuts
/// between and inside operations) on the simulated disk, with the log's whole range, first and
/// last index, terms and hard state checked against the model's entries after every operation
/// and every recovery; readers on other threads checked against the states the log went through.
module Wal.Properties.RaftLogProperties

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
let private Dir = "/data/wal"

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
            // raft's size limit: the first entry always, then as many as fit.
            if expected.Length > 1 then
                let limit = uint64 (expected.Head.Data.Length + 20)
                let limited = log.GetEntries(shown.First, shown.Last + 1UL, limit)

                if
                    limited.Count < 1
                    || limited.Count > 2
                    || ModelConvert.ofEntry limited[0] <> expected.Head
                then
                    yield $"GetEntries with a limit of {limit} bytes gave {limited.Count} entries"
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

    /// The model's contents of the live log: every basis with the whole session gives the same.
    let live () =
        match model.Bases with
        | basis :: _ -> Stream.readAll at (basis @ model.Session)
        | [] -> NoLog

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
                match Durability.recovered target observed model with
                | Some next ->
                    model <- next
                    log <- Some l
                    at <- target
                    compacted <- (target.Index, target.Term)
                    closed <- false
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
            l.SaveSnapshot(ModelConvert.toSnapshot s)
            model <- Durability.acknowledged model op
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
let private runRaftLog (config: Harness.RunConfig) (steps: Step list) =
    let run = Run(config)

    for step in steps do
        run.Step step

    let mutations = run.Mutations
    run.Finish()
    run.Divergence, run.CrashStates, mutations

let private verdict (divergence: string option) =
    divergence.IsNone |> Prop.label (defaultArg divergence "")

let ``after every operation RaftLog shows the model's entries, first and last index, terms and hard state``
    (scenario: Scenario)
    =
    let divergence, _, _ =
        runRaftLog
            { Harness.defaultConfig with
                SegmentSize = scenario.SegmentSize
            }
            scenario.Steps

    verdict divergence

let ``after power cuts between operations, RaftLog recovers to what the model allows and goes on agreeing``
    (scenario: Scenario)
    (image: int)
    =
    let divergence, _, _ =
        runRaftLog
            { Harness.defaultConfig with
                SegmentSize = scenario.SegmentSize
                CrashImage = image
            }
            scenario.Steps

    verdict divergence

let ``a power cut at any mutating call of RaftLog (appends, cuts, compactions) recovers to what the model allows``
    (scenario: Scenario)
    (point: PositiveInt)
    (image: int)
    =
    let _, _, mutations =
        runRaftLog
            { Harness.defaultConfig with
                SegmentSize = scenario.SegmentSize
            }
            scenario.Steps

    let crashAfter = 1 + (point.Get - 1) % max 1 mutations

    let divergence, crashes, _ =
        runRaftLog
            { Harness.defaultConfig with
                SegmentSize = scenario.SegmentSize
                CrashAfter = Some crashAfter
                CrashImage = image
            }
            scenario.Steps

    (crashes = 1 |> Prop.label "the power cut happened") .&. verdict divergence
    |> Prop.label $"power cut after mutating call {crashAfter} of {mutations}, image {image}"

/// One state the log went through, as the model has it: the entries from the first index on.
type private State =
    {
        First: uint64
        Entries: Wal.Model.Entry[]
    }

/// A read on another thread: from `Lo`, what came back.
type private Seen =
    {
        Lo: uint64
        Got: Wal.Model.Entry list
    }

let private explains (states: State list) (seen: Seen) =
    states
    |> List.exists (fun state ->
        seen.Lo >= state.First
        && (let skip = int (seen.Lo - state.First)
            let n = seen.Got.Length

            skip + n <= state.Entries.Length
            && List.ofArray state.Entries[skip .. skip + n - 1] = seen.Got))

let ``readers on other threads, during appends, overwrites and compactions, each see a state the model went through``
    (scenario: Scenario)
    (seed: int)
    =
    let fs, options = memoryOptions scenario.SegmentSize
    let mutable model = Log.empty
    let mutable compacted = 0UL
    let states = Collections.Concurrent.ConcurrentQueue<State>()

    let record () =
        match Log.readAll Snapshot.zero model with
        | Read c ->
            states.Enqueue
                {
                    First = compacted + 1UL
                    Entries = c.Entries |> List.filter (fun e -> e.Index > compacted) |> Array.ofList
                }
        | _ -> ()

    let mutable log: RaftLog = null
    let mutable finished = false
    let seen = Collections.Concurrent.ConcurrentBag<Seen>()
    let failures = Collections.Concurrent.ConcurrentBag<string>()

    let reader (n: int) () =
        let random = Random(seed + n)

        while not (Volatile.Read &finished) do
            let l = Volatile.Read &log

            if not (isNull l) then
                try
                    let first, last = l.FirstIndex, l.LastIndex

                    if last >= first then
                        let lo = first + uint64 (random.NextInt64(int64 (last - first + 1UL)))
                        let hi = lo + 1UL + uint64 (random.NextInt64(int64 (last - lo + 1UL)))

                        let limit =
                            if random.Next 3 = 0 then
                                uint64 (random.Next 4000)
                            else
                                UInt64.MaxValue

                        let got = l.GetEntries(lo, hi, limit) |> Seq.map ModelConvert.ofEntry |> List.ofSeq

                        if got.IsEmpty then
                            failures.Add $"GetEntries({lo}, {hi}) gave nothing"

                        seen.Add { Lo = lo; Got = got }
                        let e = l.GetEntry lo

                        seen.Add
                            {
                                Lo = lo
                                Got = [ ModelConvert.ofEntry e ]
                            }

                        if l.Term lo <> e.Term && l.FirstIndex <= lo then
                            () // a later overwrite may change a term; the read itself was checked above
                with :? WalException as ex when ex.Kind = WalErrorKind.Compacted || ex.Kind = WalErrorKind.Unavailable ->
                    // Raced a compaction or an overwrite between asking for the range and reading it.
                    ()

    let threads = [ for n in 1..3 -> Thread(reader n) ]
    threads |> List.iter (fun t -> t.Start())

    try
        for step in scenario.Steps do
            match step with
            | Do(Create metadata as op) ->
                let l = RaftLog.Create("/data/wal", ReadOnlyMemory metadata, options)
                model <- Log.apply model op
                record ()
                Volatile.Write(&log, l)
            | Do(Save(state, entries) as op) when not (isNull log) ->
                let fits =
                    match entries with
                    | e :: _ -> e.Index <= log.LastIndex + 1UL && e.Index > compacted
                    | [] -> true

                if fits then
                    log.Append(entries |> List.map ModelConvert.toEntry |> Array.ofList, ModelConvert.toHardState state)
                    model <- Log.apply model op
                    record ()
            | Do(SaveSnapshot s as op) when not (isNull log) ->
                log.SaveSnapshot(ModelConvert.toSnapshot s)
                model <- Log.apply model op
            | Do(ReleaseLockTo i) when not (isNull log) ->
                let target = min i (min log.Snapshot.Index log.LastIndex)

                if target > compacted then
                    compacted <- target
                    record ()
                    log.CompactTo target
            | _ -> ()
    finally
        Volatile.Write(&finished, true)
        threads |> List.iter (fun t -> t.Join())

        if not (isNull log) then
            log.Dispose()

    let states = List.ofSeq states

    let unexplained =
        seen |> Seq.filter (fun s -> not (explains states s)) |> Seq.tryHead

    (failures.IsEmpty |> Prop.label (String.concat "; " failures))
    .&. (unexplained.IsNone
         |> Prop.label (
             match unexplained with
             | Some s -> $"a reader saw {s.Got.Length} entries from {s.Lo} that no state of the model holds"
             | None -> ""
         ))
    |> Prop.collect (seen.Count > 0)

let private entry (term: uint64) (index: uint64) (size: int) =
    Wal.Entry(term, index, ReadOnlyMemory(Array.init size (fun i -> byte (int index + i))))

let private segmentFiles (fs: SimulatedFileSystem) =
    fs.List Dir |> List.filter (fun n -> n.EndsWith ".wal")

let tests =
    testList
        "RaftLog"
        [
            testPropertyWithConfig
                (fsCheck 100 [ typeof<Clean> ])
                "after every operation RaftLog shows the model's entries, first and last index, terms and hard state"
                ``after every operation RaftLog shows the model's entries, first and last index, terms and hard state``
            testPropertyWithConfig
                (fsCheck 100 [ typeof<WithCrashes> ])
                "after power cuts between operations, RaftLog recovers to what the model allows and goes on agreeing"
                ``after power cuts between operations, RaftLog recovers to what the model allows and goes on agreeing``
            testPropertyWithConfig
                (fsCheck 100 [ typeof<Clean> ])
                "a power cut at any mutating call of RaftLog (appends, cuts, compactions) recovers to what the model allows"
                ``a power cut at any mutating call of RaftLog (appends, cuts, compactions) recovers to what the model allows``
            testPropertyWithConfig
                (fsCheck 50 [ typeof<Clean> ])
                "readers on other threads, during appends, overwrites and compactions, each see a state the model went through"
                ``readers on other threads, during appends, overwrites and compactions, each see a state the model went through``

            testCase "a reader sees an entry only once it is synced, unless it asks for unsynced entries"
            <| fun () ->
                let fs, options = memoryOptions 4096L
                use log = RaftLog.Create(Dir, mem "m", options)
                let mutable acknowledged = 0UL
                let mutable earlyReads = 0

                fs.Observe <-
                    Some(fun _ _ ->
                        let l = log

                        Expect.isLessThanOrEqual
                            l.LastIndex
                            acknowledged
                            "the synced view runs ahead of the acknowledged appends"

                        if l.LastWrittenIndex > acknowledged then
                            let index = l.LastWrittenIndex

                            Expect.equal
                                (errorKind (fun () -> l.GetEntry index |> ignore))
                                (Some WalErrorKind.Unavailable)
                                "an unsynced entry read by default"

                            Expect.equal
                                (l.GetEntry(index, includeUnsynced = true)).Index
                                index
                                "the unsynced entry, asked for"

                            earlyReads <- earlyReads + 1)

                // The commit trails the appends by six, so entry 25 may still be overwritten.
                for i in 1UL .. 30UL do
                    log.Append([| entry 1UL i 300 |], HardState(1UL, 0UL, (if i > 6UL then i - 6UL else 0UL)))
                    acknowledged <- i

                // An overwrite: the replaced suffix is gone from every view at once, and the new entries come once synced.
                log.Append([| entry 2UL 25UL 10 |], HardState(2UL, 0UL, 24UL))
                acknowledged <- 25UL
                fs.Observe <- None
                Expect.isGreaterThan earlyReads 0 "the unsynced entries were seen between the write and the fdatasync"
                Expect.equal log.LastIndex 25UL "the last index after the overwrite"
                Expect.equal (log.Term 25UL) 2UL "the overwriting entry's term"

            testCase
                "CompactTo removes the segments below the snapshot oldest first, and what is left opens with etcd's rules and dumps"
            <| fun () ->
                let fs, options = memoryOptions 1024L
                let log = RaftLog.Create(Dir, mem "m", options)

                for i in 1UL .. 40UL do
                    log.Append([| entry 1UL i 200 |], HardState(1UL, 0UL, i))

                let before = segmentFiles fs
                log.SaveSnapshot(Wal.Snapshot(30UL, 1UL))

                Expect.equal
                    (errorKind (fun () -> log.CompactTo 31UL))
                    (Some WalErrorKind.InvalidArgument)
                    "past the snapshot"

                log.CompactTo 20UL
                let after = segmentFiles fs
                Expect.isLessThan after.Length before.Length "segments were removed"
                Expect.equal after (before |> List.skip (before.Length - after.Length)) "the newest are kept"
                Expect.equal log.FirstIndex 21UL "first index"
                Expect.equal (log.Term 20UL) 1UL "the compacted index keeps its term"

                Expect.equal
                    (errorKind (fun () -> log.GetEntry 20UL |> ignore))
                    (Some WalErrorKind.Compacted)
                    "compacted"

                Expect.equal
                    (errorKind (fun () -> log.GetEntry 41UL |> ignore))
                    (Some WalErrorKind.Unavailable)
                    "unavailable"

                Expect.equal (log.GetEntries(21UL, 41UL)).Count 20 "the rest"
                log.Dispose()
                Expect.equal (errorKind (fun () -> log.FirstIndex |> ignore)) (Some WalErrorKind.Closed) "closed"
                // What is left: etcd's ReadAll at the snapshot, and a dump from the first file left.
                use wal = WriteAheadLog.Open(Dir, Wal.Snapshot(30UL, 1UL), options)
                let read = wal.ReadAll()

                Expect.equal
                    (read.Entries |> Seq.map (fun e -> e.Index) |> List.ofSeq)
                    [ 31UL .. 40UL ]
                    "ReadAll at the snapshot"

                Expect.isGreaterThan (WalDirectory.Scan(Dir, options) |> Seq.length) 0 "Scan from the first file left"

            testCase "GetEntries keeps raft's size limit: the first entry always, then whole entries while they fit"
            <| fun () ->
                let _, options = memoryOptions 65536L
                use log = RaftLog.Create(Dir, mem "m", options)
                log.Append([| for i in 1UL .. 10UL -> entry 1UL i 100 |], HardState(1UL, 0UL, 0UL))
                let size = uint64 (100 + 3 + 1 + 1 + 1 + 1 + 1) // raftpb.Entry: four tags, three one-byte varints, a length

                Expect.equal (log.GetEntries(1UL, 11UL, 1UL)).Count 1 "one entry over the limit"
                Expect.equal (log.GetEntries(1UL, 11UL, 3UL * size)).Count 3 "three fit exactly"
                Expect.equal (log.GetEntries(1UL, 11UL, 3UL * size - 1UL)).Count 2 "three do not fit"
                Expect.equal (log.GetEntries(5UL, 5UL)).Count 0 "an empty range"

                Expect.equal
                    (errorKind (fun () -> log.GetEntries(6UL, 5UL) |> ignore))
                    (Some WalErrorKind.InvalidArgument)
                    "lo above hi"

                Expect.equal
                    (errorKind (fun () -> log.Append([| entry 1UL 12UL 1 |], HardState.Empty)))
                    (Some WalErrorKind.InvalidArgument)
                    "a gap"
        ]
