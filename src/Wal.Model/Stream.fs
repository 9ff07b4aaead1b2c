/// The record stream: which records each operation appends, and what ReadAll must return over
/// a stream at a snapshot. It knows nothing of bytes, frames or segments.
namespace Wal.Model

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

    /// The records an operation appends (syncing, closing, opening and repairing append none).
    let recordsOf (operation: Operation) : Record list =
        match operation with
        | Create metadata -> create metadata
        | Save(state, entries) -> save state entries
        | SaveSnapshot snapshot -> [ SnapshotRecord snapshot ]
        | Sync
        | ReleaseLockTo _
        | Close
        | Open _
        | OpenForRead _
        | Repair -> []

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

    /// Every outcome a ReadAll at `at` may give over `records` laid out in segments the model does
    /// not know. etcd and the engine start at the last segment named at or below the snapshot's
    /// index, so records before it are not read; a segment starts with the metadata and the
    /// last hard state, and is named one past the last index written before it (an entry's,
    /// which an overwrite lowers, or a later snapshot's). A cut may have come after any record,
    /// so each place where a segment so named could start is an outcome, beside reading all
    /// records. They differ only where entries past the snapshot were written and then
    /// overwritten from an index at or below it before the cut: read from the later segment, the
    /// stale entries are not seen.
    let readsAt (at: Snapshot) (records: Record list) : ReadOutcome list =
        // Only where it can matter: after an entry past the snapshot, and before the snapshot's
        // own record (a reader that starts past it would not find it).
        let starts =
            records
            |> List.fold
                (fun (k, last, metadata, state, past, matched, found) record ->
                    let last, metadata, state, past, matched =
                        match record with
                        | EntryRecord e -> e.Index, metadata, state, past || e.Index > at.Index, matched
                        | SnapshotRecord s -> max last s.Index, metadata, state, past, matched || s.Index = at.Index
                        | Metadata m -> last, Some m, state, past, matched
                        | State s -> last, metadata, Some s, past, matched

                    let found =
                        if past && not matched && last + 1UL <= at.Index then
                            (k + 1, metadata, state) :: found
                        else
                            found

                    k + 1, last, metadata, state, past, matched, found)
                (0, 0UL, None, None, false, false, [])
            |> fun (_, _, _, _, _, _, found) -> found

        [
            yield readAll at records
            for k, metadata, state in starts do
                let header =
                    [
                        yield! Option.toList (Option.map Metadata metadata)
                        yield! Option.toList (Option.map State state)
                    ]

                yield readAll at (header @ List.skip k records)
        ]
        |> List.distinct

    /// The last snapshot installed past every entry before it (as a raft follower installs its
    /// leader's), or zero: raft opens at it or later, since a read from below it meets the gap
    /// before the entries after it (SliceOutOfRange).
    let installed (records: Record seq) : Snapshot =
        records
        |> Seq.fold
            (fun (last, floor) record ->
                match record with
                | EntryRecord e -> e.Index, floor
                | SnapshotRecord s when s.Index > last && s.Index > floor.Index -> last, s
                | _ -> last, floor)
            (0UL, Snapshot.zero)
        |> snd

    /// The last snapshot `operations` install past every entry before them (`installed` over
    /// the records they write): where raft opens after running them.
    let installedBy (operations: Operation seq) : Snapshot =
        operations |> Seq.collect recordsOf |> installed

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
