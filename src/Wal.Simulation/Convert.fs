/// Between the engine's values and the model's.
module Wal.Simulation.Convert

open System
open Wal

let toEntry (e: Wal.Model.Entry) : Wal.Entry =
    Wal.Entry(e.Term, e.Index, enum<EntryType> e.Kind, ReadOnlyMemory e.Data)

let ofEntry (e: Wal.Entry) : Wal.Model.Entry =
    {
        Term = e.Term
        Index = e.Index
        Kind = int e.Type
        Data = e.Data.ToArray()
    }

let toHardState (s: Wal.Model.HardState) = Wal.HardState(s.Term, s.Vote, s.Commit)

let ofHardState (s: Wal.HardState) : Wal.Model.HardState =
    {
        Term = s.Term
        Vote = s.Vote
        Commit = s.Commit
    }

let toSnapshot (s: Wal.Model.Snapshot) = Wal.Snapshot(s.Index, s.Term)

let ofContents (r: ReadAllResult) : Wal.Model.Contents =
    {
        Metadata = r.Metadata.ToArray()
        State = ofHardState r.State
        Entries = r.Entries |> Seq.map ofEntry |> List.ofSeq
    }

/// What the engine's ReadAll gave: an outcome the model knows, or an error kind it does not
/// (corruption, a torn tail, I/O).
type EngineOutcome =
    | Model of Wal.Model.ReadOutcome
    | OtherError of WalErrorKind * message: string

/// Runs ReadAll and classifies what it returns or throws.
let readOutcome (wal: WriteAheadLog) =
    try
        Model(Wal.Model.Read(ofContents (wal.ReadAll())))
    with :? WalException as ex ->
        match ex.Kind with
        | WalErrorKind.SnapshotNotFound -> Model(Wal.Model.NotFound(ofContents ex.Contents.Value))
        | WalErrorKind.SnapshotMismatch -> Model(Wal.Model.Failed Wal.Model.SnapshotMismatch)
        | WalErrorKind.MetadataConflict -> Model(Wal.Model.Failed Wal.Model.MetadataConflict)
        | WalErrorKind.SliceOutOfRange -> Model(Wal.Model.Failed Wal.Model.SliceOutOfRange)
        | kind -> OtherError(kind, ex.Message)

/// One line for an outcome.
let describe (outcome: EngineOutcome) =
    match outcome with
    | Model o -> Wal.Model.ReadOutcome.describe o
    | OtherError(kind, message) -> $"{kind} ({message})"
