/// Conversions between the engine's values and the model's, and small helpers the suites share.
module Wal.Properties.Support

open System
open System.IO
open Wal
open Wal.Properties.MemoryFileSystem


let toEntry = Wal.Simulation.Convert.toEntry
let ofEntry = Wal.Simulation.Convert.ofEntry
let toHardState = Wal.Simulation.Convert.toHardState
let ofHardState = Wal.Simulation.Convert.ofHardState
let toSnapshot = Wal.Simulation.Convert.toSnapshot
let ofContents = Wal.Simulation.Convert.ofContents

/// What the engine's ReadAll gave, in the model's terms; other error kinds as their names.
type EngineOutcome =
    | Model of Wal.Model.ReadOutcome
    | OtherError of WalErrorKind

/// Runs ReadAll and classifies what it returns or throws.
let readOutcome (wal: WriteAheadLog) =
    match Wal.Simulation.Convert.readOutcome wal with
    | Wal.Simulation.Convert.Model o -> Model o
    | Wal.Simulation.Convert.OtherError(kind, _) -> OtherError kind

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
