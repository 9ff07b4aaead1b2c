/// Durability: what may survive a crash, given what was acknowledged and what was in flight.
namespace Wal.Model

/// Which Saves must be durable when they return.
///
/// Both rules make a Save durable when it carries entries or changes the term or the vote; they
/// differ in the hard state the change is measured against after the log is opened.
[<RequireQualifiedAccess>]
type DurabilityRule =
    /// Raft's contract: against the last hard state the implementation knows, saved or read back
    /// by recovery. A Save that repeats the term and vote it read need not be synced.
    | RaftContract
    /// etcd 3.4's exact rule: against the last hard state saved since the log was opened. etcd's
    /// ReadAll never sets the state MustSync compares with, so the first Save with a non-empty
    /// hard state after every open is durable.
    | EtcdExact

/// What a crash may keep: the records on disk are one of `Bases` (after earlier crashes, more
/// than one can explain what was read) followed by a prefix of `Session` that holds at least the
/// first `Durable` records (those acknowledged as durable) and at most all of them (everything
/// the client asked to write, including what an interrupted operation may have written).
type DurableLog =
    {
        Bases: Record list list
        Session: Record list
        Durable: int
        /// The hard state MustSync compares with: the last non-empty one saved since the log was
        /// opened, or (under the raft contract) the one recovery read back.
        SessionState: HardState
        /// Whether Create was acknowledged.
        Created: bool
        /// Which Saves must be durable.
        Rule: DurabilityRule
    }

[<RequireQualifiedAccess>]
module Durability =
    /// Before Create, judged by `rule`.
    let empty (rule: DurabilityRule) : DurableLog =
        {
            Bases = [ [] ]
            Session = []
            Durable = 0
            SessionState = HardState.empty
            Created = false
            Rule = rule
        }

    /// Before Create, judged by etcd's exact rule: the engine's own suites hold it to that.
    let none: DurableLog = empty DurabilityRule.EtcdExact

    /// Where raft opens after a crash now: the last snapshot installed past the entries before it
    /// in whichever base (followed by the session) the disk holds, the latest if they differ.
    let installed (log: DurableLog) : Snapshot =
        log.Bases
        |> List.map (fun basis -> Stream.installed (basis @ log.Session))
        |> List.maxBy _.Index

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
            { empty log.Rule with
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
        | ReleaseLockTo _
        | Close
        | Open _
        | OpenForRead _
        | Repair -> log

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
                    yield! Stream.readsAt at records
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
                    Stream.readsAt at records |> List.contains observed)
            |> List.distinct

        // etcd's ReadAll leaves the state MustSync compares with empty; raft's contract lets the
        // implementation compare with what it read back.
        let known =
            match log.Rule, observed with
            | DurabilityRule.RaftContract, (Read c | NotFound c) -> c.State
            | _ -> HardState.empty

        match explaining, observed with
        | [], _ -> None
        | _, NoLog -> Some(empty log.Rule)
        | bases, _ ->
            Some
                {
                    Bases = bases |> List.filter (fun r -> not r.IsEmpty)
                    Session = []
                    Durable = 0
                    SessionState = known
                    Created = true
                    Rule = log.Rule
                }
