/// The explicit conversions between Wal.Model's domain types (F# records, data as byte[]) and
/// Wal.Core's values (structs, data as ReadOnlyMemory). They live here, not in Wal.Model, so that
/// the model stays free of any implementation. Both sides have an `Entry`, a `HardState` and a
/// `Snapshot`; the functions' signatures name each side in full, and `to*` goes from the
/// model to the engine, `of*` from the engine to the model. Entries round-trip exactly (the
/// engine's data is copied into a fresh array); a snapshot's membership, which the model does
/// not hold, is dropped.
[<RequireQualifiedAccess>]
module Wal.FSharp.ModelConvert

open System
open Wal

/// A model entry as the engine's (the data array is not copied).
let toEntry (e: Wal.Model.Entry) : Wal.Entry =
    Wal.Entry(e.Term, e.Index, enum<EntryType> e.Kind, ReadOnlyMemory e.Data)

/// An engine entry as the model's (the data is copied).
let ofEntry (e: Wal.Entry) : Wal.Model.Entry =
    {
        Term = e.Term
        Index = e.Index
        Kind = int e.Type
        Data = e.Data.ToArray()
    }

/// A model hard state as the engine's.
let toHardState (s: Wal.Model.HardState) : Wal.HardState = Wal.HardState(s.Term, s.Vote, s.Commit)

/// An engine hard state as the model's.
let ofHardState (s: Wal.HardState) : Wal.Model.HardState =
    {
        Term = s.Term
        Vote = s.Vote
        Commit = s.Commit
    }

/// A model snapshot marker as the engine's (no membership).
let toSnapshot (s: Wal.Model.Snapshot) : Wal.Snapshot =
    Wal.Snapshot(index = s.Index, term = s.Term)

/// An engine snapshot marker as the model's (its membership is dropped).
let ofSnapshot (s: Wal.Snapshot) : Wal.Model.Snapshot = { Index = s.Index; Term = s.Term }

/// What the engine's ReadAll read, as the model's contents.
let ofContents (r: ReadAllResult) : Wal.Model.Contents =
    {
        Metadata = r.Metadata.ToArray()
        State = ofHardState r.State
        Entries = r.Entries |> Seq.map ofEntry |> List.ofSeq
    }

/// The model's contents as the engine's ReadAll result.
let toContents (c: Wal.Model.Contents) : ReadAllResult =
    ReadAllResult(ReadOnlyMemory c.Metadata, toHardState c.State, c.Entries |> List.map toEntry |> Array.ofList)

/// An outcome as the model states it, when the model has a word for it: `Read` and `NotFound`
/// always; `Error` only for the model's error kinds (SnapshotMismatch, MetadataConflict,
/// SliceOutOfRange). Corruption, torn tails and I/O are outside the model: None.
let ofReadOutcome (outcome: ReadOutcome) : Wal.Model.ReadOutcome option =
    match outcome with
    | ReadOutcome.Read c -> Some(Wal.Model.Read(ofContents c))
    | ReadOutcome.NotFound c -> Some(Wal.Model.NotFound(ofContents c))
    | ReadOutcome.Error(WalErrorKind.SnapshotMismatch, _) -> Some(Wal.Model.Failed Wal.Model.SnapshotMismatch)
    | ReadOutcome.Error(WalErrorKind.MetadataConflict, _) -> Some(Wal.Model.Failed Wal.Model.MetadataConflict)
    | ReadOutcome.Error(WalErrorKind.SliceOutOfRange, _) -> Some(Wal.Model.Failed Wal.Model.SliceOutOfRange)
    | ReadOutcome.Error _ -> None
