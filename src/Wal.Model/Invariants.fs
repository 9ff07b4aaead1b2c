/// Raft's invariants over a record stream: what raft never writes, so that a log breaking one
/// is damage (etcd's format leaves each record's type byte outside its CRC) or a caller's
/// mistake. The engine keeps the same rules (WalOptions.CheckRaftInvariants); the generators
/// keep to them.
namespace Wal.Model

/// What the invariants know of a stream so far.
type InvariantState =
    private
        {
            /// The log's terms as runs (first index, term), newest first: they change rarely.
            Runs: (uint64 * uint64) list
            LastIndex: uint64
            State: HardState
        }

[<RequireQualifiedAccess>]
module Invariants =
    /// Before any record.
    let start: InvariantState =
        {
            Runs = []
            LastIndex = 0UL
            State = HardState.empty
        }

    let private termBefore (index: uint64) (s: InvariantState) =
        if index <= 1UL || index - 1UL > s.LastIndex then
            None
        else
            s.Runs
            |> List.tryFind (fun (first, _) -> first <= index - 1UL)
            |> Option.map snd

    /// Why `entry` cannot come next, or None; `gaps` for a writer (a reader reports a gap as
    /// etcd does, SliceOutOfRange).
    let entryViolation (gaps: bool) (entry: Entry) (s: InvariantState) : string option =
        if entry.Kind < 0 || entry.Kind > 2 then
            Some $"entry {entry.Index} has type {entry.Kind}; raft's types are 0, 1 and 2"
        elif gaps && entry.Index > s.LastIndex + 1UL then
            Some $"entry {entry.Index} would leave a gap after the last index {s.LastIndex}"
        // Entries need not have been read for the log to hold them: a commit can rest on a
        // snapshot record installed past the entries.
        elif entry.Index <= s.LastIndex && entry.Index <= s.State.Commit then
            Some $"entry {entry.Index} would replace a committed entry (commit {s.State.Commit})"
        else
            match termBefore entry.Index s with
            | Some before when entry.Term < before ->
                Some $"entry {entry.Index} has term {entry.Term}, below term {before} of the entry before it"
            | _ -> None

    /// Why `state` cannot come next, or None.
    let stateViolation (state: HardState) (s: InvariantState) : string option =
        if state.Term < s.State.Term then
            Some $"a hard state's term {state.Term} is below the term {s.State.Term} before it"
        elif state.Term = s.State.Term && s.State.Vote <> 0UL && state.Vote <> s.State.Vote then
            Some $"a hard state changes the vote from {s.State.Vote} to {state.Vote} within term {state.Term}"
        elif state.Commit > s.LastIndex then
            Some $"a hard state commits {state.Commit}, beyond the last index {s.LastIndex}"
        else
            None

    /// The state after `record`.
    let accept (record: Record) (s: InvariantState) : InvariantState =
        match record with
        | EntryRecord e ->
            let runs = s.Runs |> List.skipWhile (fun (first, _) -> first >= e.Index)

            let runs =
                match runs with
                | (_, term) :: _ when term = e.Term -> runs
                | _ -> (e.Index, e.Term) :: runs

            { s with
                Runs = runs
                LastIndex = e.Index
            }
        | State state -> { s with State = state }
        | SnapshotRecord snap when snap.Index > s.LastIndex ->
            { s with
                Runs = (snap.Index, snap.Term) :: s.Runs
                LastIndex = snap.Index
            }
        | SnapshotRecord _ -> s
        | Metadata _ -> s

    /// Why `record` cannot come next for a reader, or None.
    let recordViolation (record: Record) (s: InvariantState) : string option =
        match record with
        | EntryRecord e -> entryViolation false e s
        | State state -> stateViolation state s
        | SnapshotRecord _
        | Metadata _ -> None

    /// The first record of a stream that breaks an invariant (its position and why), or None.
    let firstViolation (records: Record seq) : (int * string) option =
        records
        |> Seq.indexed
        |> Seq.scan
            (fun (s, _) (i, record) ->
                match recordViolation record s with
                | Some why -> s, Some(i, why)
                | None -> accept record s, None)
            (start, None)
        |> Seq.tryPick snd

    /// Why a Save of `entries` then `state` after `records` would break an invariant or leave a
    /// gap, or None: checked whole, before anything is written, as the engine does.
    let saveViolation (records: Record seq) (state: HardState) (entries: Entry list) : string option =
        let s = Seq.fold (fun s r -> accept r s) start records

        let rec entriesFrom (s: InvariantState) (previous: Entry option) (rest: Entry list) =
            match rest, previous with
            | [], _ -> None, s
            | e :: _, Some p when e.Index <> p.Index + 1UL ->
                Some $"entry {e.Index} does not follow entry {p.Index} in the same Save", s
            | e :: tail, _ ->
                match entryViolation true e s with
                | Some why -> Some why, s
                | None -> entriesFrom (accept (EntryRecord e) s) (Some e) tail

        match entriesFrom s None entries with
        | Some why, _ -> Some why
        | None, _ when HardState.isEmpty state -> None
        | None, s -> stateViolation state s
