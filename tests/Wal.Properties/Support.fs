/// Conversions between the engine's values and the model's, and small helpers the suites share.
module Wal.Properties.Support

open System
open System.IO
open Wal
open Wal.Properties.MemoryFileSystem


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

/// What the engine's ReadAll gave, in the model's terms; other error kinds as their names.
type EngineOutcome =
    | Model of Wal.Model.ReadOutcome
    | OtherError of WalErrorKind

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
        | kind -> OtherError kind

/// Options over a fresh in-memory file system, deterministic (no background preallocation).
let memoryOptions (segmentSize: int64) =
    let fs = MemoryFileSystem()
    fs, WalOptions(FileSystem = fs, SegmentSizeBytes = segmentSize, PrepareSegmentsInBackground = false)

/// The kind of the WalException an action throws, or None when it returns.
let errorKind (action: unit -> unit) =
    try
        action ()
        None
    with :? WalException as ex ->
        Some ex.Kind

/// A fresh, not yet existing directory under the system's temp folder, removed on Dispose.
type TempDir() =
    let root = Path.Combine(Path.GetTempPath(), $"wal-tests-{Guid.NewGuid():N}")
    do Directory.CreateDirectory root |> ignore
    /// A path inside the temp folder that does not exist yet.
    member _.Path = Path.Combine(root, "wal")
    member _.Root = root

    interface IDisposable with
        member _.Dispose() =
            try
                Directory.Delete(root, true)
            with _ ->
                ()

let bytes (s: string) = Text.Encoding.UTF8.GetBytes s
let mem (s: string) = ReadOnlyMemory(bytes s)

/// The first segment's file name.
let firstSegment = "0000000000000000-0000000000000000.wal"

/// Asserts equality through NUnit's structural comparison (lists, arrays, records).
let expectEqual (expected: 'T) (actual: 'T) =
    NUnit.Framework.Assert.That(box actual, NUnit.Framework.Is.EqualTo(box expected))

/// Asserts equality, naming what is compared in the failure message.
let expectEqualAt (what: string) (expected: 'T) (actual: 'T) =
    NUnit.Framework.Assert.That(box actual, NUnit.Framework.Is.EqualTo(box expected), what)

/// Asserts that the action throws a WalException and returns it.
let expectWalError (action: unit -> unit) : WalException =
    match
        (try
            action ()
            None
         with :? WalException as ex ->
             Some ex)
    with
    | Some ex -> ex
    | None -> failwith "expected a WalException, but the call returned"
