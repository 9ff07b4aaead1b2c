/// The domain of an etcd-format WAL's record stream, as raft sees it: entries, hard states,
/// snapshot markers, the records they become and what ReadAll recovers. Wal.Model knows
/// nothing of Wal.Core and depends on FSharp.Core alone, so it can judge any implementation.
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
