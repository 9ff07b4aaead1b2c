// Checking another WAL implementation with the model: a deliberately naive WAL, written here,
// which buffers Saves and flushes only every third one (ignoring etcd's MustSync), goes
// through Oracle.check with power cuts. The oracle finds it losing acknowledged data and
// prints the shrunk counterexample as a trace (docs/traces.md); the engine passes the same check,
// and the oracle's crash-state explorer (docs/oracle.md#exploring-crash-states).
// Run with: dotnet fsi build.fsx pack && dotnet fsi examples/oracle.fsx
#r "nuget: Wal.Model"
#r "nuget: Wal.Oracle"
#r "nuget: Wal.Simulation"

open Wal.Model
open Wal.Oracle

/// The naive WAL: an in-memory "disk" of records, a write buffer, and a power cut that drops it.
let naive () : Oracle.Adapter =
    let mutable disk: Record list option = None
    let mutable buffer: Record list = []
    let mutable saves = 0

    let flush () =
        disk <- disk |> Option.map (fun d -> d @ buffer)
        buffer <- []

    let read (at: Snapshot) =
        match disk with
        | None -> NoLog
        | Some records ->
            let entries =
                records
                |> List.fold
                    (fun (acc: Entry list) r ->
                        match r with
                        | EntryRecord e when e.Index > at.Index ->
                            (acc |> List.filter (fun x -> x.Index < e.Index)) @ [ e ]
                        | _ -> acc)
                    []

            let state =
                records
                |> List.fold
                    (fun s r ->
                        match r with
                        | State st when not (HardState.isEmpty st) -> st
                        | _ -> s)
                    HardState.empty

            let metadata =
                records
                |> List.pick (function
                    | Metadata m -> Some m
                    | _ -> None)

            let contents =
                {
                    Metadata = metadata
                    State = state
                    Entries = entries
                }

            if records |> List.contains (SnapshotRecord at) then
                Read contents
            else
                NotFound contents

    {
        Name = "a naive WAL"
        Reset =
            fun () ->
                disk <- None
                buffer <- []
        Create = fun m -> disk <- Some [ Metadata m; SnapshotRecord Snapshot.zero ]
        Save =
            fun state entries ->
                buffer <- buffer @ (entries |> List.map EntryRecord) @ [ State state ]
                saves <- saves + 1

                if saves % 3 = 0 then
                    flush ()
        SaveSnapshot =
            fun s ->
                buffer <- buffer @ [ SnapshotRecord s ]
                flush ()
        Sync = flush
        ReleaseLockTo = ignore
        Close = flush
        OpenAndReadAll = read
        PowerCut = Some(fun _ -> buffer <- [])
    }

let report = Oracle.check (naive ()) Oracle.Config.standard
printfn "%O\n" report

let engine =
    Oracle.check (Wal.Simulation.EngineAdapter.simulated 512L) Oracle.Config.etcdExact

printfn "%O" engine

// The engine again, with the crash images enumerated after every mutating call rather than one
// random image per power cut: the oracle's explorer, for adapters on the simulated disk.
let storage = Wal.Simulation.SimulatedStorage()

let explored =
    Wal.Simulation.OracleExplorer.explore
        storage
        (Wal.Simulation.EngineAdapter.simulatedOn storage 512L)
        { Oracle.Config.etcdExact with
            Tests = 20
        }

printfn "%O" explored

match report, engine with
| Oracle.Falsified _, Oracle.Passed _ when explored.Divergences = 0 -> ()
| _ -> failwith "expected the naive WAL to be caught and the engine to pass"
