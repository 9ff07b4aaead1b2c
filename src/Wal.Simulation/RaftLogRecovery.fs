/// RaftLog under the explorer. On the crash image the engine's recovery was judged on, RaftLog's
/// own recovery (Open at the same snapshot; one Repair on a torn tail, then Open again) must end
/// where the engine's ended: the contents the model allowed the engine, or the same error. It
/// indexes the log with its own scan (IndexScan, split at a segment whenever the log has two or
/// more) and resumes the writer from it, so it can
/// disagree with ReadAll where the engine cannot; recovery then goes on, as raft's would: one
/// more entry appended, the log closed and opened again, and the entry must be there.
[<RequireQualifiedAccess>]
module Wal.Simulation.RaftLogRecovery

open Wal
open Wal.FSharp
open Wal.Simulation.Convert

/// The error kind an engine outcome stands for; None when the engine read contents.
let private errorKind (observed: EngineOutcome) =
    match observed with
    | Model(Wal.Model.Read _) -> None
    | Model(Wal.Model.NotFound _)
    | Model(Wal.Model.Failed Wal.Model.SnapshotNotFound) -> Some WalErrorKind.SnapshotNotFound
    | Model Wal.Model.NoLog -> Some WalErrorKind.FileNotFound
    | Model(Wal.Model.Failed Wal.Model.SnapshotMismatch) -> Some WalErrorKind.SnapshotMismatch
    | Model(Wal.Model.Failed Wal.Model.MetadataConflict) -> Some WalErrorKind.MetadataConflict
    | Model(Wal.Model.Failed Wal.Model.SliceOutOfRange) -> Some WalErrorKind.SliceOutOfRange
    | OtherError(kind, _) -> Some kind

let private attempt (action: unit -> 'a) =
    try
        Ok(action ())
    with :? WalException as ex ->
        Error ex

/// Open as etcd's server recovers: a torn tail is repaired once, then the log opens again.
let rec private recover (options: WalOptions) (at: Wal.Model.Snapshot) (repair: bool) =
    match attempt (fun () -> RaftLog.Open(Harness.Directory, ModelConvert.toSnapshot at, options)) with
    | Error ex when ex.Kind = WalErrorKind.UnexpectedEof && repair ->
        match attempt (fun () -> WalDirectory.Repair(Harness.Directory, options)) with
        | Error ex -> Error ex
        | Ok _ -> recover options at false
    | result -> result

/// What the log answers about its whole range against `expected`, the contents after the
/// snapshot it opened at; the first disagreement, if any.
let private disagreement (log: RaftLog) (at: Wal.Model.Snapshot) (expected: Wal.Model.Contents) =
    let first, last = log.FirstIndex, log.LastIndex

    let lastExpected =
        expected.Entries
        |> List.tryLast
        |> Option.map _.Index
        |> Option.defaultValue at.Index

    let entries =
        if last >= first then
            log.GetEntries(first, last + 1UL) |> Seq.map ModelConvert.ofEntry |> List.ofSeq
        else
            []

    [
        if first <> at.Index + 1UL then
            $"FirstIndex {first} after opening at snapshot {at.Index}"
        if last <> lastExpected then
            $"LastIndex {last}, where the last entry read is {lastExpected}"
        if entries <> expected.Entries then
            let show (es: Wal.Model.Entry list) =
                es |> List.map (fun e -> $"{e.Index}/{e.Term}") |> String.concat " "

            $"entries [{show entries}], where the read gave [{show expected.Entries}]"
        if ModelConvert.ofHardState log.HardState <> expected.State then
            $"hard state {log.HardState}, where the read gave {expected.State}"
        if log.Metadata.ToArray() <> expected.Metadata then
            "metadata differs from the read's"
        if log.Term at.Index <> at.Term then
            $"Term({at.Index}) = {log.Term at.Index}, where the snapshot's term is {at.Term}"
        for e in expected.Entries do
            if log.Term e.Index <> e.Term then
                $"Term({e.Index}) = {log.Term e.Index}, where its entry has term {e.Term}"
    ]
    |> List.tryHead

/// Appends one entry past everything read (a new leader's term), closes, reopens with RaftLog and
/// checks the entry and its hard state are there after what was read.
let private goesOn (options: WalOptions) (at: Wal.Model.Snapshot) (log: RaftLog) (read: Wal.Model.Contents) =
    let last =
        read.Entries
        |> List.tryLast
        |> Option.map _.Index
        |> Option.defaultValue at.Index

    let entry: Wal.Model.Entry =
        {
            Term = 1000UL
            Index = last + 1UL
            Kind = 0
            Data = Array.create 300 0x3Cuy
        }

    let state: Wal.Model.HardState =
        {
            Term = 1000UL
            Vote = 2UL
            Commit = last
        }

    let appended =
        attempt (fun () ->
            try
                log.Append([ ModelConvert.toEntry entry ], ModelConvert.toHardState state)
            finally
                log.Dispose())

    match appended with
    | Error ex -> Some $"appending entry {entry.Index} after recovering failed: {ex.Kind} {ex.Message}"
    | Ok() ->
        match recover options at false with
        | Error ex -> Some $"reopening after appending entry {entry.Index} failed: {ex.Kind} {ex.Message}"
        | Ok reopened ->
            let expected =
                { read with
                    State = state
                    Entries = read.Entries @ [ entry ]
                }

            try
                match attempt (fun () -> disagreement reopened at expected) with
                | Ok problem -> problem
                | Error ex -> Some $"a query failed with {ex.Kind}: {ex.Message}"
                |> Option.map (fun m -> $"after appending entry {entry.Index} and reopening: {m}")
            finally
                reopened.Dispose()

/// Recovers with RaftLog from `image` of `state`, opening at `at`, where the engine's recovery
/// gave `observed` (already judged against the model); None when RaftLog agrees and goes on.
let judge
    (segmentSize: int64)
    (state: DiskState)
    (at: Wal.Model.Snapshot)
    (image: CrashImage)
    (observed: EngineOutcome)
    =
    let fs = SimulatedFileSystem(CrashImage.crash state image)

    // Every log of two segments or more is read split (in sequence, on the simulated disk), so
    // the split read is judged on every crash image; it leaves what it cannot vouch for to one reader.
    let options =
        WalOptions(
            FileSystem = fs,
            SegmentSizeBytes = segmentSize,
            PrepareSegmentsInBackground = false,
            SplitOpenBytes = 0L,
            ZeroAheadBytes = Harness.zeroAheadFor segmentSize
        )

    let verdict =
        match recover options at true, observed with
        | Ok log, Model(Wal.Model.Read read) ->
            // A query that throws on a log it opened is a disagreement too.
            match attempt (fun () -> disagreement log at read) with
            | Error ex ->
                log.Dispose()
                Some $"a query failed with {ex.Kind}: {ex.Message}"
            | Ok(Some message) ->
                log.Dispose()
                Some message
            | Ok None -> goesOn options at log read
        | Ok log, _ ->
            log.Dispose()
            Some $"RaftLog opened where the engine's recovery gave {describe observed}"
        | Error ex, _ when errorKind observed = Some ex.Kind -> None
        | Error ex, _ ->
            Some $"RaftLog failed with {ex.Kind} ({ex.Message}) where the engine's recovery gave {describe observed}"

    verdict |> Option.map (fun m -> $"RaftLog: {m}")
