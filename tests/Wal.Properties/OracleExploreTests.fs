/// The oracle's crash-state explorer (Wal.Simulation.OracleExplorer) and the simulated storage an
/// adapter keeps: the engine passes with no divergence, and a naive WAL on the simulated disk,
/// holding the file system it got once, is caught, by Oracle.check and by the explorer.
module Wal.Properties.OracleExploreTests

open System
open Expecto
open Wal.Model
open Wal.Oracle
open Wal.Oracle.Trace
open Wal.Storage
open Wal.Simulation

/// A record as a line of the naive WAL's file.
let private lineOf (record: Record) =
    match record with
    | Metadata m -> $"M {Convert.ToHexString m}"
    | EntryRecord e -> $"E {e.Term} {e.Index} {e.Kind} {Convert.ToHexString e.Data}"
    | State s -> $"S {s.Term} {s.Vote} {s.Commit}"
    | SnapshotRecord s -> $"P {s.Index} {s.Term}"

/// The records of the naive WAL's file; a line cut short by a crash ends them.
let private recordsOf (text: string) =
    let lines = text.Split('\n')

    lines
    |> Array.truncate (lines.Length - 1)
    |> Array.toList
    |> List.map (fun line ->
        match line.Split(' ') with
        | [| "M"; m |] -> Metadata(Convert.FromHexString m)
        | [| "E"; t; i; k; d |] ->
            EntryRecord
                {
                    Term = uint64 t
                    Index = uint64 i
                    Kind = int k
                    Data = Convert.FromHexString d
                }
        | [| "S"; t; v; c |] ->
            State
                {
                    Term = uint64 t
                    Vote = uint64 v
                    Commit = uint64 c
                }
        | [| "P"; i; t |] -> SnapshotRecord { Index = uint64 i; Term = uint64 t }
        | _ -> failwith $"a corrupt line: {line}")

/// A naive WAL on the simulated disk: records stay in memory until every third Save (or a sync,
/// a snapshot, a close), whatever etcd's MustSync says; then they are appended to its file as
/// text lines and fdatasynced. It keeps the file system it was given once, as users do.
let naiveOnDisk (storage: SimulatedStorage) : Oracle.Adapter =
    let files = storage.FileSystem :> IFileSystem
    let path = "/naive/log"
    let mutable buffer: Record list = []
    let mutable saves = 0

    let flush () =
        use file = files.OpenFile(path, OpenMode.ReadWrite)
        let text = buffer |> List.map (fun r -> lineOf r + "\n") |> String.concat ""
        file.Write(file.Length, ReadOnlySpan(Text.Encoding.ASCII.GetBytes text))
        file.DataSync()
        buffer <- []

    {
        Name = "a naive WAL on the simulated disk"
        Reset =
            fun () ->
                storage.Reset()
                buffer <- []
        Create =
            fun m ->
                buffer <- [ Metadata m; SnapshotRecord Snapshot.zero ]
                files.CreateDirectory "/naive"
                files.SyncDirectory "/"
                (files.OpenFile(path, OpenMode.CreateTruncate)).Dispose()
                files.SyncDirectory "/naive"
                flush ()
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
        OpenAndReadAll =
            fun at ->
                buffer <- []

                if not (files.FileExists path) then
                    NoLog
                else
                    let records =
                        use file = files.OpenFile(path, OpenMode.Read)
                        let bytes = Array.zeroCreate<byte>(int file.Length)
                        file.Read(0L, Span bytes) |> ignore
                        recordsOf (Text.Encoding.ASCII.GetString bytes)

                    let mutable state = HardState.empty
                    let mutable entries: Entry list = []
                    let mutable found = false

                    for r in records do
                        match r with
                        | EntryRecord e when e.Index > at.Index ->
                            entries <- (entries |> List.filter (fun x -> x.Index < e.Index)) @ [ e ]
                        | State s when not (HardState.isEmpty s) -> state <- s
                        | SnapshotRecord s when s = at -> found <- true
                        | _ -> ()

                    match
                        records
                        |> List.tryPick (function
                            | Metadata m -> Some m
                            | _ -> None)
                    with
                    | None -> NoLog
                    | Some metadata ->
                        let contents =
                            {
                                Metadata = metadata
                                State = state
                                Entries = entries
                            }

                        if found then Read contents else NotFound contents
        // The memory is gone; what the disk kept is read back at the next open.
        PowerCut =
            Some(fun image ->
                storage.PowerCut image
                buffer <- [])
    }

/// The counterexample is a trace: it parses, and the model rejects it at its last line.
let private rejectedAtItsLastLine (c: Oracle.Counterexample) =
    match Trace.parse c.Trace with
    | Error e -> failtest $"the counterexample does not parse: {e}\n{c.Trace}"
    | Ok lines ->
        match Trace.check lines with
        | Violated(Disallowed(line, _, _)) -> Expect.equal line ((List.last lines).Number) c.Trace
        | other -> failtest $"the counterexample checks as {other}\n{c.Trace}"

let ``a WAL holding the file system it got once is power-cut, and caught losing saves`` () =
    let storage = SimulatedStorage()

    match Oracle.check (naiveOnDisk storage) Oracle.Config.standard with
    | Oracle.Passed _ -> failtest "the naive WAL passed: its file system did not lose the unsynced count"
    | Oracle.Falsified(_, c) ->
        Expect.stringContains c.Trace "crash" ""
        rejectedAtItsLastLine c

let ``a file handle from before a power cut refuses calls on the new disk`` () =
    let storage = SimulatedStorage()
    let files = storage.FileSystem :> IFileSystem
    let file = files.OpenFile("/f", OpenMode.CreateTruncate)
    storage.PowerCut 0
    Expect.isTrue (obj.ReferenceEquals(files, storage.FileSystem)) "the same file system"
    Expect.throws (fun () -> file.Write(0L, ReadOnlySpan [| 1uy |])) "a stale handle writes nothing"
    storage.Reset()
    Expect.isFalse (files.FileExists "/f") "the same file system sees the fresh disk"

let ``the engine passes the oracle's explorer with no divergence`` () =
    let storage = SimulatedStorage()

    let report =
        OracleExplorer.explore
            storage
            (EngineAdapter.simulatedOn storage 512L)
            { Oracle.Config.etcdExact with
                Tests = 40
            }

    printfn "%s" report.Summary
    Expect.equal report.Divergences 0 report.Summary
    Expect.equal report.Sequences 40 ""
    Expect.isGreaterThan report.CrashStates 1000 "crash states explored"

let ``the oracle's explorer catches the naive WAL, with a shrunk trace`` () =
    let storage = SimulatedStorage()

    let report =
        OracleExplorer.explore storage (naiveOnDisk storage) Oracle.Config.standard

    printfn "%s" report.Summary

    match report.Counterexample with
    | None -> failtest $"the naive WAL passed: {report.Summary}"
    | Some c ->
        Expect.isLessThanOrEqual c.Shrunk c.Original ""
        rejectedAtItsLastLine c

/// This file's tests.
let tests =
    testList
        "OracleExploreTests"
        [
            testCase
                "a WAL holding the file system it got once is power-cut, and caught losing saves"
                ``a WAL holding the file system it got once is power-cut, and caught losing saves``
            testCase
                "a file handle from before a power cut refuses calls on the new disk"
                ``a file handle from before a power cut refuses calls on the new disk``
            testCase
                "the engine passes the oracle's explorer with no divergence"
                ``the engine passes the oracle's explorer with no divergence``
            testCase
                "the oracle's explorer catches the naive WAL, with a shrunk trace"
                ``the oracle's explorer catches the naive WAL, with a shrunk trace``
        ]
