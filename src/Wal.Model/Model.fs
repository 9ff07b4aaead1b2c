/// A pure reference model of an etcd-format WAL's record stream: which records each
/// operation appends, and what ReadAll must return over a stream at a snapshot. It knows
/// nothing of bytes, frames or segments, and does not reference Wal.Core, so it can judge any
/// implementation.
namespace Wal.Model

/// A raft log entry. `Kind` is raftpb.EntryType's number (0 normal, 1 conf change, 2 conf change v2).
type Entry =
    {
        Term: uint64
        Index: uint64
        Kind: int
        Data: byte[]
    }

/// Raft's persistent state.
type HardState =
    {
        Term: uint64
        Vote: uint64
        Commit: uint64
    }

/// A snapshot marker: the index and term a raft snapshot covers.
type Snapshot = { Index: uint64; Term: uint64 }

/// One logical record of the stream.
type Record =
    | Metadata of byte[]
    | EntryRecord of Entry
    | State of HardState
    | SnapshotRecord of Snapshot

/// The errors a reader reports for a well-formed stream.
type ErrorKind =
    | MetadataConflict
    | SnapshotMismatch
    | SnapshotNotFound
    | SliceOutOfRange

/// What a ReadAll recovers.
type Contents =
    {
        Metadata: byte[]
        State: HardState
        Entries: Entry list
    }

/// The outcome of ReadAll: contents, contents with SnapshotNotFound (etcd returns both), an
/// error, or no log at all (a crash before Create was acknowledged).
type ReadOutcome =
    | Read of Contents
    | NotFound of Contents
    | Failed of ErrorKind
    | NoLog

/// An operation on a log, as a client performs it.
type Operation =
    | Create of metadata: byte[]
    | Save of HardState * Entry list
    | SaveSnapshot of Snapshot
    | Sync
    | ReleaseLockTo of index: uint64
    /// Close, then Open at the snapshot and ReadAll.
    | Reopen of Snapshot
    /// A second, read-only reader opens at the snapshot and reads, beside the writer.
    | OpenForRead of Snapshot
    /// Close, Repair (which finds nothing to cut on a cleanly closed log), Open at index 0 and ReadAll.
    | Repair
    /// Power loss now (what survives is chosen by `image`); then recovery as etcd's server does
    /// it: Open at the snapshot and ReadAll, on a torn tail Repair once, Open and ReadAll again.
    | Crash of image: int * recoverAt: Snapshot

[<RequireQualifiedAccess>]
module HardState =
    /// The zero hard state, which a Save does not write.
    let empty: HardState = { Term = 0UL; Vote = 0UL; Commit = 0UL }

    let isEmpty (s: HardState) = s = empty

    /// etcd's MustSync: entries, or a changed term or vote, must reach the disk before Save returns.
    let mustSync (previous: HardState) (next: HardState) (entryCount: int) =
        entryCount <> 0 || next.Vote <> previous.Vote || next.Term <> previous.Term

[<RequireQualifiedAccess>]
module Snapshot =
    let zero: Snapshot = { Index = 0UL; Term = 0UL }

[<RequireQualifiedAccess>]
module Stream =
    /// The records a new log starts with.
    let create (metadata: byte[]) : Record list =
        [ Metadata metadata; SnapshotRecord Snapshot.zero ]

    /// The records a Save appends: its entries, then its hard state unless empty.
    let save (state: HardState) (entries: Entry list) : Record list =
        [
            yield! entries |> List.map EntryRecord
            if not (HardState.isEmpty state) then
                yield State state
        ]

    /// The records an operation appends (reopening and syncing append none).
    let recordsOf (operation: Operation) : Record list =
        match operation with
        | Create metadata -> create metadata
        | Save(state, entries) -> save state entries
        | SaveSnapshot snapshot -> [ SnapshotRecord snapshot ]
        | Sync
        | ReleaseLockTo _
        | Reopen _
        | OpenForRead _
        | Repair
        | Crash _ -> []

    /// ReadAll over a stream at a snapshot, with etcd's rules: entries at or below the snapshot
    /// are skipped; an entry whose index is present replaces it and everything after it; an
    /// index past the end is SliceOutOfRange; differing metadata is MetadataConflict; a snapshot
    /// record at the index with another term is SnapshotMismatch; none at all is SnapshotNotFound,
    /// with the contents.
    let readAll (at: Snapshot) (records: Record seq) : ReadOutcome =
        // Entries are kept newest first, with their count, so replacing a suffix is cheap.
        let rec go (rest: Record list) metadata state (entries: Entry list) count matched =
            match rest with
            | [] ->
                let contents =
                    {
                        Metadata = defaultArg metadata [||]
                        State = state
                        Entries = List.rev entries
                    }

                if matched then Read contents else NotFound contents
            | record :: rest ->
                match record with
                | EntryRecord e when e.Index > at.Index ->
                    let up = e.Index - at.Index - 1UL

                    if up > uint64 count then
                        Failed SliceOutOfRange
                    else
                        let kept = List.skip (count - int up) entries
                        go rest metadata state (e :: kept) (int up + 1) matched
                | EntryRecord _ -> go rest metadata state entries count matched
                | State s -> go rest metadata s entries count matched
                | Metadata m ->
                    match metadata with
                    | Some previous when previous <> m -> Failed MetadataConflict
                    // etcd reads empty metadata as nil, which later metadata is not compared with.
                    | _ -> go rest (if Array.isEmpty m then None else Some m) state entries count matched
                | SnapshotRecord s when s.Index = at.Index ->
                    if s.Term <> at.Term then
                        Failed SnapshotMismatch
                    else
                        go rest metadata state entries count true
                | SnapshotRecord _ -> go rest metadata state entries count matched

        go (List.ofSeq records) None HardState.empty [] 0 false

/// A log as the model sees it: the records written so far.
type Log = { Records: Record list }

[<RequireQualifiedAccess>]
module Log =
    let empty: Log = { Records = [] }

    /// Applies an operation; records are kept newest last.
    let apply (log: Log) (operation: Operation) : Log =
        match Stream.recordsOf operation with
        | [] -> log
        | added -> { Records = log.Records @ added }

    /// ReadAll over the whole log at a snapshot.
    let readAll (at: Snapshot) (log: Log) : ReadOutcome = Stream.readAll at log.Records

[<RequireQualifiedAccess>]
module Operation =
    let private entry (e: Entry) =
        let kind = if e.Kind = 0 then "" else $" kind={e.Kind}"
        $"{e.Term}/{e.Index}{kind} ({e.Data.Length} B)"

    /// One line per operation, for counterexamples.
    let describe (operation: Operation) =
        match operation with
        | Create m -> $"create metadata={m.Length} B"
        | Save(s, es) ->
            let entries = es |> List.map entry |> String.concat ", "
            $"save term={s.Term} vote={s.Vote} commit={s.Commit} [{entries}]"
        | SaveSnapshot s -> $"snapshot index={s.Index} term={s.Term}"
        | Sync -> "sync"
        | ReleaseLockTo i -> $"release-lock-to {i}"
        | Reopen s -> $"reopen at index={s.Index} term={s.Term}"
        | OpenForRead s -> $"open-for-read at index={s.Index} term={s.Term}"
        | Repair -> "close, repair, reopen"
        | Crash(image, s) -> $"crash image={image}, recover at index={s.Index} term={s.Term}"

[<RequireQualifiedAccess>]
module ReadOutcome =
    let private contents (c: Contents) =
        let entries =
            c.Entries
            |> List.map (fun e -> $"{e.Term}/{e.Index}:{e.Data.Length}B")
            |> String.concat " "

        $"metadata {c.Metadata.Length} B, state {c.State.Term}/{c.State.Vote}/{c.State.Commit}, entries [{entries}]"

    /// A compact one-line description (entries as term/index:size), for counterexamples.
    let describe (outcome: ReadOutcome) =
        match outcome with
        | Read c -> $"read {contents c}"
        | NotFound c -> $"SnapshotNotFound with {contents c}"
        | Failed kind -> $"{kind}"
        | NoLog -> "no log"

/// What a crash may keep: the records on disk are one of `Bases` (after earlier crashes, more
/// than one can explain what was read) followed by a prefix of `Session` that holds at least the
/// first `Durable` records (those acknowledged as durable) and at most all of them (everything
/// the client asked to write, including what an interrupted operation may have written).
type DurableLog =
    {
        Bases: Record list list
        Session: Record list
        Durable: int
        /// The last non-empty hard state saved since the log was opened: etcd's MustSync compares with it.
        SessionState: HardState
        /// Whether Create was acknowledged.
        Created: bool
    }

[<RequireQualifiedAccess>]
module Durability =
    /// Before Create.
    let none: DurableLog =
        {
            Bases = [ [] ]
            Session = []
            Durable = 0
            SessionState = HardState.empty
            Created = false
        }

    /// Everything written is durable now (a sync, a snapshot, a clean close).
    let synced (log: DurableLog) =
        { log with
            Durable = log.Session.Length
        }

    /// An operation was issued but not acknowledged (a crash or an error interrupted it): its
    /// records may or may not be on disk, and nothing becomes durable.
    let interrupted (log: DurableLog) (operation: Operation) =
        match operation with
        | Create m when not log.Created -> { log with Session = Stream.create m }
        | _ ->
            { log with
                Session = log.Session @ Stream.recordsOf operation
            }

    /// An operation was acknowledged: its records are written, and durable as etcd promises:
    /// Create, SaveSnapshot and Sync always; Save when MustSync says so.
    let acknowledged (log: DurableLog) (operation: Operation) =
        match operation with
        | Create m ->
            { none with
                Bases = [ Stream.create m ]
                Created = true
            }
        | Save(state, entries) when HardState.isEmpty state && entries.IsEmpty -> log
        | Save(state, entries) ->
            let mustSync = HardState.mustSync log.SessionState state entries.Length

            let log =
                { log with
                    Session = log.Session @ Stream.save state entries
                    SessionState = if HardState.isEmpty state then log.SessionState else state
                }

            if mustSync then synced log else log
        | SaveSnapshot snapshot ->
            synced
                { log with
                    Session = log.Session @ [ SnapshotRecord snapshot ]
                }
        | Sync -> synced log
        | ReleaseLockTo _ -> log
        | Reopen _
        | OpenForRead _
        | Repair
        | Crash _ -> log

    /// Every record list the disk may hold now, shortest prefix first.
    let candidates (log: DurableLog) : Record list list =
        [
            for basis in log.Bases do
                for k in log.Durable .. log.Session.Length do
                    yield basis @ List.take k log.Session
        ]

    /// The outcomes ReadAll at `at` may give after a crash now: ReadAll of any candidate, and
    /// no log at all when Create was not acknowledged and its records need not be there.
    let allowedAfterCrash (at: Snapshot) (log: DurableLog) : ReadOutcome list =
        [
            if not log.Created then
                yield NoLog
            for records in candidates log do
                if not records.IsEmpty then
                    yield Stream.readAll at records
        ]
        |> List.distinct

    /// After recovery read `observed` at `at`: the candidates that explain it become the new
    /// bases, all durable; None when no candidate does (a divergence).
    let recovered (at: Snapshot) (observed: ReadOutcome) (log: DurableLog) : DurableLog option =
        let explaining =
            candidates log
            |> List.filter (fun records ->
                if records.IsEmpty then
                    observed = NoLog
                else
                    Stream.readAll at records = observed)
            |> List.distinct

        match explaining, observed with
        | [], _ -> None
        | _, NoLog -> Some none
        | bases, _ ->
            Some
                {
                    Bases = bases |> List.filter (fun r -> not r.IsEmpty)
                    Session = []
                    Durable = 0
                    SessionState = HardState.empty
                    Created = true
                }
