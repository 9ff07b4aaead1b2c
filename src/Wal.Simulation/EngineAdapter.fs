/// Wal.Core as an Oracle adapter, on the simulated disk (so the oracle can cut the power) or
/// on a real directory (without power cuts). The engine's own suites run through it, so the
/// adapter is proven on every CI run.
module Wal.Simulation.EngineAdapter

open System
open System.IO
open Wal
open Wal.Model
open Wal.Simulation.Convert
open Wal.Simulation.Harness
open Wal.Simulation.SimulatedDisk

/// Recovery as etcd's server does it (Repair once on a torn tail), as an adapter observes it.
let private observed (outcome: EngineOutcome) =
    match outcome with
    | Model o -> o
    | OtherError(kind, _) -> raise (Oracle.ReadFailed(string kind))

/// The engine on a fresh simulated disk per run, with `segmentSize`-byte segments; power cuts
/// keep what the simulated disk's crash image `image` keeps (lost sectors read as zeros or old
/// contents, never garbage).
let simulated (segmentSize: int64) : Oracle.Adapter =
    let mutable fs = SimulatedFileSystem(SimulatedDisk.empty)
    let mutable wal: WriteAheadLog option = None
    let options () = optionsFor fs segmentSize

    let current () =
        wal |> Option.defaultWith (fun () -> invalidOp "no log is open")

    {
        Name = $"Wal.Core on the simulated disk ({segmentSize}-byte segments)"
        Reset =
            fun () ->
                fs <- SimulatedFileSystem(SimulatedDisk.empty)
                wal <- None
        Create = fun metadata -> wal <- Some(WriteAheadLog.Create(Directory, ReadOnlyMemory metadata, options ()))
        Save = fun state entries -> current().Save(toHardState state, entries |> List.map toEntry |> Array.ofList)
        SaveSnapshot = fun s -> current().SaveSnapshot(toSnapshot s)
        Sync = fun () -> current().Sync()
        ReleaseLockTo = fun i -> current().ReleaseLockTo i
        Close =
            fun () ->
                wal |> Option.iter (fun w -> w.Dispose())
                wal <- None
        OpenAndReadAll =
            fun at ->
                let outcome, opened = recover (options ()) at
                wal <- opened
                observed outcome
        PowerCut =
            Some(fun image ->
                fs <- powerCut fs image
                wal <- None)
    }

/// The engine on the real file system, in a fresh directory under `root` per run; no power cuts.
let onDisk (root: string) (segmentSize: int64) : Oracle.Adapter =
    let mutable dir = ""
    let mutable wal: WriteAheadLog option = None
    let options = WalOptions(SegmentSizeBytes = segmentSize)

    let current () =
        wal |> Option.defaultWith (fun () -> invalidOp "no log is open")

    {
        Name = $"Wal.Core on {root} ({segmentSize}-byte segments)"
        Reset =
            fun () ->
                wal |> Option.iter (fun w -> w.Dispose())
                wal <- None
                dir <- Path.Combine(root, Guid.NewGuid().ToString("N"))
        Create = fun metadata -> wal <- Some(WriteAheadLog.Create(dir, ReadOnlyMemory metadata, options))
        Save = fun state entries -> current().Save(toHardState state, entries |> List.map toEntry |> Array.ofList)
        SaveSnapshot = fun s -> current().SaveSnapshot(toSnapshot s)
        Sync = fun () -> current().Sync()
        ReleaseLockTo = fun i -> current().ReleaseLockTo i
        Close =
            fun () ->
                wal |> Option.iter (fun w -> w.Dispose())
                wal <- None
        OpenAndReadAll =
            fun at ->
                if not (IO.Directory.Exists dir) then
                    NoLog
                else
                    let w = WriteAheadLog.Open(dir, toSnapshot at, options)

                    match readOutcome w with
                    | Model((Read _ | NotFound _) as o) ->
                        wal <- Some w
                        o
                    | other ->
                        w.Dispose()
                        observed other
        PowerCut = None
    }
