/// Drives interop/etcd/peer, a Go program built on etcd 3.4's own wal package, and the engine
/// the same way, so the Interop tests can hold one against the other. Both report ReadAll in
/// the schema of `wal dump --json` (Wal.Oracle.ReadAllJson).
module Wal.Properties.EtcdPeer

open System
open System.Diagnostics
open System.IO
open System.Text
open System.Text.Json
open Wal
open Wal.Oracle
open Wal.Simulation
open Wal.Model
open Wal.Properties.Support
open Wal.Oracle.Scenarios

/// The peer's path: WAL_ETCD_PEER (build.fsx sets it), else where `build.fsx peer` puts it.
let path =
    lazy
        (match Environment.GetEnvironmentVariable "WAL_ETCD_PEER" with
         | null
         | "" ->
             let rec up (dir: DirectoryInfo) =
                 if isNull dir then
                     None
                 elif File.Exists(Path.Combine(dir.FullName, "Wal.sln")) then
                     Some(Path.Combine(dir.FullName, "interop", "etcd", "bin", "etcd-peer"))
                 else
                     up dir.Parent

             up (DirectoryInfo AppContext.BaseDirectory)
             |> Option.filter File.Exists
             |> Option.defaultWith (fun () ->
                 failwith
                     "The etcd peer is not built: run `dotnet fsi build.fsx peer` (or the test target, which builds it).")
         | path -> path)

/// Runs the peer; its stdout lines, or a failure with what it printed on stderr.
let run (args: string list) =
    let info =
        ProcessStartInfo(
            path.Value,
            args,
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true
        )

    use proc = Process.Start info
    let err = proc.StandardError.ReadToEndAsync()
    let out = proc.StandardOutput.ReadToEnd()
    proc.WaitForExit()

    if proc.ExitCode <> 0 then
        failwith $"""etcd-peer {String.Join(" ", args)} exited with {proc.ExitCode}: {err.Result.Trim()}"""

    out.Split('\n', StringSplitOptions.RemoveEmptyEntries) |> List.ofArray

let private parse (line: string) =
    match ReadAllJson.parse line with
    | Ok dump -> dump
    | Error e -> failwith $"the peer printed something outside the schema ({e}): {line}"

let private snapArg (s: Wal.Model.Snapshot) = $"{s.Index}:{s.Term}"

/// An operation sequence as the peer's script (interop/etcd/README.md). A second reader beside
/// the writer (OpenForRead) changes nothing on disk, so the script leaves it out.
let script (scenario: Scenario) =
    use stream = new MemoryStream()

    do
        use w = new Utf8JsonWriter(stream)
        w.WriteStartObject()
        w.WriteNumber("segmentSize", scenario.SegmentSize)
        w.WriteStartArray("ops")

        for move in moves scenario.Steps do
            let start (name: string) =
                w.WriteStartObject()
                w.WriteString("op", name)

            match move with
            | [ Do(Create metadata) ] ->
                start "create"
                w.WriteBase64String("metadata", ReadOnlySpan metadata)
                w.WriteEndObject()
            | [ Do(Save(state, entries)) ] ->
                start "save"
                w.WriteNumber("term", state.Term)
                w.WriteNumber("vote", state.Vote)
                w.WriteNumber("commit", state.Commit)
                w.WriteStartArray("entries")

                for e in entries do
                    ReadAllJson.writeEntry w e.Term e.Index e.Kind e.Data

                w.WriteEndArray()
                w.WriteEndObject()
            | [ Do(SaveSnapshot s) ] ->
                start "snapshot"
                w.WriteNumber("index", s.Index)
                w.WriteNumber("term", s.Term)
                w.WriteEndObject()
            | [ Do Sync ] ->
                start "sync"
                w.WriteEndObject()
            | [ Do(ReleaseLockTo index) ] ->
                start "releaseLockTo"
                w.WriteNumber("index", index)
                w.WriteEndObject()
            | [ Do Close; Do(Open at) ] ->
                start "reopen"
                w.WriteNumber("snapIndex", at.Index)
                w.WriteNumber("snapTerm", at.Term)
                w.WriteEndObject()
            | [ Do Close; Do Repair; Do(Open _) ] ->
                start "repair"
                w.WriteEndObject()
            | [ Do(OpenForRead _) ] -> ()
            | _ -> invalidArg "scenario" $"the peer runs no power cuts nor {move}"

        w.WriteEndArray()
        w.WriteEndObject()

    Encoding.UTF8.GetString(stream.ToArray())

/// etcd runs the scenario in `dir`; what each Reopen and Repair read back, in order.
let write (dir: string) (scenario: Scenario) =
    let file = Path.Combine(Path.GetDirectoryName dir, "script.json")
    File.WriteAllText(file, script scenario)
    run [ "write"; dir; file ] |> List.map parse

/// etcd's ReadAll at `at`: OpenForRead, or Open (a writer's open, which zeroes a torn tail) when `writeMode`.
let read (dir: string) (at: Wal.Model.Snapshot) (writeMode: bool) =
    run ([ "read"; dir; snapArg at ] @ (if writeMode then [ "write" ] else []))
    |> List.exactlyOne
    |> parse

/// etcd's Repair: whether it repaired (or found nothing to repair).
let repair (dir: string) =
    match run [ "repair"; dir ] with
    | [ line ] ->
        use doc = JsonDocument.Parse line
        doc.RootElement.GetProperty("repaired").GetBoolean()
    | lines -> failwith $"etcd-peer repair printed {lines}"

/// etcd's Verify at `at`: the error kind, if any.
let verify (dir: string) (at: Wal.Model.Snapshot) =
    match run [ "verify"; dir; snapArg at ] with
    | [ line ] ->
        use doc = JsonDocument.Parse line

        match doc.RootElement.GetProperty("error") with
        | e when e.ValueKind = JsonValueKind.Null -> None
        | e -> Some(e.GetString())
    | lines -> failwith $"etcd-peer verify printed {lines}"

/// The engine runs the scenario in `dir` on the real file system, as the peer does; what each
/// Reopen and Repair read back, in order.
let engineWrite (dir: string) (scenario: Scenario) =
    let options = WalOptions(SegmentSizeBytes = scenario.SegmentSize)
    let mutable wal: WriteAheadLog = null
    let reads = ResizeArray()

    let mutable stopped = false

    let reopen (at: Wal.Model.Snapshot) =
        let snapshot = Wal.FSharp.ModelConvert.toSnapshot at
        wal <- WriteAheadLog.Open(dir, snapshot, options)

        let result =
            try
                Ok(wal.ReadAll())
            with :? WalException as e ->
                Error e

        reads.Add(EngineReadAll.ofResult snapshot result)

        // As the peer: a failed ReadAll (other than SnapshotNotFound) ends the run.
        match result with
        | Error e when e.Kind <> WalErrorKind.SnapshotNotFound -> stopped <- true
        | _ -> ()

    for step in scenario.Steps |> Seq.takeWhile (fun _ -> not stopped) do
        match step with
        | Do(Create metadata) -> wal <- WriteAheadLog.Create(dir, ReadOnlyMemory metadata, options)
        | Do(Save _ | SaveSnapshot _ | Sync | ReleaseLockTo _ as op) -> Wal.Simulation.Harness.perform wal op
        | Do Close -> wal.Dispose()
        | Do Repair -> WalDirectory.Repair(dir, options) |> ignore
        | Do(Open at) -> reopen at
        | Do(OpenForRead _) -> ()
        | Happen _ -> invalidArg "scenario" "no power cuts here"

    wal.Dispose()
    List.ofSeq reads

/// gogo-protobuf's Unmarshal of one message kind over each input, as the peer reports it:
/// "record" (walpb.Record) gives "ok TYPE CRC DATAHEX", "entry" (raftpb.Entry) "ok TERM INDEX
/// TYPE DATAHEX", "state" (raftpb.HardState) "ok TERM VOTE COMMIT"; a refusal is "truncated"
/// (io.ErrUnexpectedEOF) or "invalid".
let records (kind: string) (inputs: byte[] list) =
    let info =
        ProcessStartInfo(
            path.Value,
            [ "records"; kind; "-" ],
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true
        )

    use proc = Process.Start info
    let out = proc.StandardOutput.ReadToEndAsync()
    let err = proc.StandardError.ReadToEndAsync()

    for input in inputs do
        proc.StandardInput.WriteLine(Convert.ToHexString(input))

    proc.StandardInput.Close()
    proc.WaitForExit()

    if proc.ExitCode <> 0 then
        failwith $"etcd-peer records exited with {proc.ExitCode}: {err.Result.Trim()}"

    out.Result.Split('\n', StringSplitOptions.RemoveEmptyEntries) |> List.ofArray

/// The one deliberate difference between the engine's and etcd's write-mode ReadAll: etcd 3.4
/// (3.5 and 3.6 too) loses ErrSnapshotNotFound when it opens for writing, because its
/// newFileEncoder call overwrites err, so a missing snapshot goes unreported; the engine reports
/// it, with the contents, and stays ready to append. This is the engine's outcome as etcd gives it.
let asEtcdOpenReports (dump: ReadAllJson.Dump) =
    match dump.Error with
    | Some "SnapshotNotFound" -> { dump with Error = None }
    | _ -> dump
