/// Wal.Core as an Oracle adapter, on the simulated disk (so the oracle can cut the power) or
/// on a real directory (without power cuts). The engine's own suites run through it, so the
/// adapter is proven on every CI run.
module Wal.Simulation.EngineAdapter

open System
open System.IO
open Wal
open Wal.Model
open Wal.Oracle
open Wal.Simulation.Convert
open Wal.Simulation.Harness

/// An outcome as an adapter reports it: the model's, or ReadFailed with the engine's error kind.
let private observed (outcome: EngineOutcome) =
    match outcome with
    | Model o -> o
    | OtherError(kind, _) -> raise (Oracle.ReadFailed(string kind))

/// The log the adapter has open, if any.
type private Handle() =
    member val Log: WriteAheadLog option = None with get, set

    member this.Current =
        this.Log |> Option.defaultWith (fun () -> invalidOp "no log is open")

    member this.Close() =
        this.Log |> Option.iter (fun w -> w.Dispose())
        this.Log <- None

/// The adapter's log operations on whatever log `handle` has open.
let private adapter name (handle: Handle) reset create openAndReadAll powerCut : Oracle.Adapter =
    {
        Name = name
        Reset = reset
        Create = create
        Save =
            fun state entries ->
                handle.Current.Save(
                    Wal.FSharp.ModelConvert.toHardState state,
                    entries |> List.map Wal.FSharp.ModelConvert.toEntry |> Array.ofList
                )
        SaveSnapshot = fun s -> handle.Current.SaveSnapshot(Wal.FSharp.ModelConvert.toSnapshot s)
        Sync = fun () -> handle.Current.Sync()
        ReleaseLockTo = fun i -> handle.Current.ReleaseLockTo i
        Close = handle.Close
        OpenAndReadAll = openAndReadAll
        PowerCut = powerCut
    }

/// The engine on `storage`, a fresh simulated disk per run, with `segmentSize`-byte segments; a power cut
/// keeps what the simulated disk's crash image `image` keeps (lost sectors read as zeros or old
/// contents, never garbage); recovery is etcd's server's (Repair once on a torn tail).
let simulatedOnWith (zeroFill: bool) (storage: SimulatedStorage) (segmentSize: int64) : Oracle.Adapter =
    let handle = Handle()

    // Generated sequences go on after a power cut as if nothing was lost, so a Save may leave a
    // gap raft would never leave; the engine here reads and writes as etcd does (no raft
    // invariants), as the oracle holds other implementations to. The harness and explorer keep
    // the invariants on, and judge each refusal against the model's.
    let options () =
        WalOptions(
            FileSystem = storage.FileSystem,
            SegmentSizeBytes = segmentSize,
            PrepareSegmentsInBackground = false,
            CheckRaftInvariants = false,
            ZeroFillSegments = zeroFill,
            ZeroAheadBytes = zeroAheadFor segmentSize
        )

    let filled = if zeroFill then ", zero-filled" else ""

    adapter
        $"Wal.Core on the simulated disk ({segmentSize}-byte segments{filled})"
        handle
        (fun () ->
            storage.Reset()
            handle.Log <- None)
        (fun metadata -> handle.Log <- Some(WriteAheadLog.Create(Directory, ReadOnlyMemory metadata, options ())))
        (fun at ->
            let outcome, opened = recover (options ()) at
            handle.Log <- opened
            observed outcome)
        (Some(fun image ->
            storage.PowerCut image
            handle.Log <- None))

/// The engine on `storage` as etcd runs it (`simulatedOnWith`, segments fallocated only).
let simulatedOn (storage: SimulatedStorage) (segmentSize: int64) : Oracle.Adapter =
    simulatedOnWith false storage segmentSize

/// The engine on a fresh simulated disk per run (`simulatedOn` a storage of its own).
let simulated (segmentSize: int64) : Oracle.Adapter =
    simulatedOn (SimulatedStorage()) segmentSize

/// The engine on the real file system, in a fresh directory under `root` per run; no power cuts.
let onDisk (root: string) (segmentSize: int64) : Oracle.Adapter =
    let handle = Handle()
    let mutable dir = ""
    let options = WalOptions(SegmentSizeBytes = segmentSize)

    adapter
        $"Wal.Core on {root} ({segmentSize}-byte segments)"
        handle
        (fun () ->
            handle.Close()
            dir <- Path.Combine(root, Guid.NewGuid().ToString("N")))
        (fun metadata -> handle.Log <- Some(WriteAheadLog.Create(dir, ReadOnlyMemory metadata, options)))
        (fun at ->
            if not (IO.Directory.Exists dir) then
                NoLog
            else
                let log = WriteAheadLog.Open(dir, Wal.FSharp.ModelConvert.toSnapshot at, options)

                match readOutcome log with
                | Model((Read _ | NotFound _) as o) ->
                    handle.Log <- Some log
                    o
                | other ->
                    log.Dispose()
                    observed other)
        None
