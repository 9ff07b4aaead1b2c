/// `wal driver`: the engine (Wal.Core) behind the driver protocol (docs/driver-protocol.md), so
/// the checker that drives any implementation drives this one the same way. One request a
/// line on stdin, one answer a line on stdout; every error is a typed answer, never a crash.
module Wal.Cli.Driver

open System
open System.IO
open System.Text
open System.Text.Json
open Argu
open Wal
open Wal.Oracle

type DriverArgs =
    | [<Hidden>] Unused

    interface IArgParserTemplate with
        member this.Usage =
            match this with
            | Unused -> "unused."

/// A request the driver cannot follow (missing field, wrong type, unknown op).
exception private BadRequest of string

let private field (e: JsonElement) (name: string) =
    match e.TryGetProperty name with
    | true, v -> v
    | _ -> raise (BadRequest $"the field \"{name}\" is missing")

let private u64 (e: JsonElement) (name: string) =
    match Driver.number (field e name) with
    | Some v -> v
    | None -> raise (BadRequest $"the field \"{name}\" is not an integer below 2^64")

let private text (e: JsonElement) (name: string) =
    let v = field e name

    if v.ValueKind = JsonValueKind.String then
        v.GetString()
    else
        raise (BadRequest $"the field \"{name}\" is not a string")

let private bytes (e: JsonElement) (name: string) =
    match (field e name).TryGetBytesFromBase64() with
    | true, b -> b
    | _ -> raise (BadRequest $"the field \"{name}\" is not base64")

let private failure (kind: string) (message: string) =
    use stream = new MemoryStream()

    do
        use w = new Utf8JsonWriter(stream)
        w.WriteStartObject()
        w.WriteBoolean("ok", false)
        w.WriteString("error", kind)
        w.WriteString("message", message.Replace('\n', ' '))
        w.WriteEndObject()

    Encoding.UTF8.GetString(stream.ToArray())

let private ok = "{\"ok\":true}"

let private hasLog (dir: string) =
    Directory.Exists dir
    && Directory.EnumerateFiles(dir, "*.wal").GetEnumerator().MoveNext()

/// Recovery as etcd's server does it after a power loss: Open at the snapshot and ReadAll; on a
/// torn tail, Repair once, then Open and ReadAll again. The log stays open when it was read.
let private recover (dir: string) (at: Snapshot) : ReadAllJson.Dump * WriteAheadLog option =
    let attempt () =
        let wal = WriteAheadLog.Open(dir, at)

        try
            let contents = wal.ReadAll()
            Simulation.EngineReadAll.ofResult at (Ok contents), Some wal
        with :? WalException as e ->
            if e.Kind = WalErrorKind.SnapshotNotFound then
                Simulation.EngineReadAll.ofResult at (Error e), Some wal
            else
                wal.Dispose()
                raise e

    if not (hasLog dir) then
        { ReadAllJson.empty at.Index at.Term with
            Error = Some "NoLog"
        },
        None
    else
        try
            try
                attempt ()
            with :? WalException as e when e.Kind = WalErrorKind.UnexpectedEof ->
                WalDirectory.Repair dir |> ignore
                attempt ()
        with :? WalException as e ->
            Simulation.EngineReadAll.ofResult at (Error e), None

/// Serves requests from `input`, answers on `output`, until quit or the end of input.
let serve (input: TextReader) (output: TextWriter) =
    let mutable log: WriteAheadLog option = None

    let current () =
        log |> Option.defaultWith (fun () -> raise (BadRequest "no log is open"))

    let closeLog () =
        log |> Option.iter (fun w -> w.Dispose())
        log <- None

    let answer (request: JsonElement) : string * bool =
        match text request "op" with
        | "hello" ->
            "{\"ok\":true,\"name\":\"Wal.Core\",\"supports\":[\"overwrite\",\"snapshot\",\"install\",\"release\",\"sync\",\"bare-after-reopen\"]}",
            false
        | "create" ->
            closeLog ()
            log <- Some(WriteAheadLog.Create(text request "dir", ReadOnlyMemory(bytes request "metadata")))
            ok, false
        | "save" ->
            let entries = field request "entries"

            if entries.ValueKind <> JsonValueKind.Array then
                raise (BadRequest "\"entries\" is not an array")

            let entries =
                [|
                    for e in entries.EnumerateArray() ->
                        Entry(
                            u64 e "term",
                            u64 e "index",
                            enum<EntryType>(int (u64 e "type")),
                            ReadOnlyMemory(bytes e "data")
                        )
                |]

            current().Save(HardState(u64 request "term", u64 request "vote", u64 request "commit"), entries)
            ok, false
        | "snapshot" ->
            current().SaveSnapshot(Snapshot(u64 request "index", u64 request "term"))
            ok, false
        | "sync" ->
            current().Sync()
            ok, false
        | "release" ->
            current().ReleaseLockTo(u64 request "index")
            ok, false
        | "close" ->
            closeLog ()
            ok, false
        | "open" ->
            closeLog ()
            let at = Snapshot(u64 request "snapIndex", u64 request "snapTerm")
            let dump, opened = recover (text request "dir") at
            log <- opened
            $"{{\"ok\":true,\"read\":{ReadAllJson.render dump}}}", false
        | "quit" -> ok, true
        | other -> raise (BadRequest $"unknown op \"{other}\"")

    let rec loop () =
        match input.ReadLine() with
        | null -> ()
        | line ->
            let reply, quit =
                try
                    use doc = JsonDocument.Parse(line)
                    answer doc.RootElement
                with
                | BadRequest message -> failure "BadRequest" message, false
                | :? JsonException as e -> failure "BadRequest" $"not JSON: {e.Message}", false
                | :? WalException as e -> failure (string e.Kind) e.Message, false
                | e -> failure (e.GetType().Name) e.Message, false

            output.Write(reply)
            output.Write('\n')
            output.Flush()

            if not quit then
                loop ()

    try
        loop ()
    finally
        closeLog ()

/// `wal driver`: serves the protocol on stdin/stdout; exit 0 at quit or the end of input.
let run (_: ParseResults<DriverArgs>) =
    let output = new StreamWriter(Console.OpenStandardOutput(), UTF8Encoding(false))
    serve Console.In output
    Commands.Exit.ok
