/// The checker's side of the driver protocol (docs/driver-protocol.md) over DriverProcess: the
/// requests for the model's operations, the answers as the model's outcomes (ReadAll's JSON
/// schema, numbers as integers or decimal strings), and the driver as an Oracle adapter.
module Wal.Oracle.Driver

open System
open System.Globalization
open System.IO
open System.Text
open System.Text.Json
open Wal.Model
open Wal.Oracle.DriverProcess

/// Raised by the adapter when the driver breaks the protocol.
exception ProtocolBreach of Breach

/// Raised by the adapter when the driver answers `{"ok":false,...}`.
exception DriverRefused of kind: string * message: string

/// What the driver said it supports in its hello.
type Hello =
    {
        Name: string
        Supports: Scenarios.Supports
    }

/// A number as the protocol allows it: a JSON integer or a decimal string, below 2^64.
let number (e: JsonElement) : uint64 option =
    match e.ValueKind with
    | JsonValueKind.Number ->
        match e.TryGetUInt64() with
        | true, v -> Some v
        | _ -> None
    | JsonValueKind.String ->
        match UInt64.TryParse(e.GetString(), NumberStyles.None, CultureInfo.InvariantCulture) with
        | true, v -> Some v
        | _ -> None
    | _ -> None

exception private Field of string

let private field (e: JsonElement) (name: string) =
    match e.TryGetProperty name with
    | true, v -> v
    | _ -> raise (Field $"the field \"{name}\" is missing")

let private u64 (e: JsonElement) (name: string) =
    match number (field e name) with
    | Some v -> v
    | None -> raise (Field $"the field \"{name}\" is not an integer below 2^64 (or its decimal string)")

let private bytes (e: JsonElement) (name: string) =
    let v = field e name

    match v.ValueKind with
    | JsonValueKind.String ->
        match v.TryGetBytesFromBase64() with
        | true, b -> b
        | _ -> raise (Field $"the field \"{name}\" is not base64")
    | _ -> raise (Field $"the field \"{name}\" is not a base64 string")

/// The `read` object of an open's answer (ReadAll's JSON schema, numbers as integers or
/// strings), at the snapshot `at` when it leaves out snapIndex/snapTerm.
let parseRead (at: Snapshot) (read: JsonElement) : Result<ReadAllJson.Dump, string> =
    try
        if read.ValueKind <> JsonValueKind.Object then
            raise (Field "\"read\" is not an object")

        let optional name fallback =
            match read.TryGetProperty(name: string) with
            | true, _ -> u64 read name
            | _ -> fallback

        let entries = field read "entries"

        if entries.ValueKind <> JsonValueKind.Array then
            raise (Field "\"entries\" is not an array")

        Result.Ok
            {
                SnapIndex = optional "snapIndex" at.Index
                SnapTerm = optional "snapTerm" at.Term
                Metadata = bytes read "metadata"
                Term = u64 read "term"
                Vote = u64 read "vote"
                Commit = u64 read "commit"
                Entries =
                    [
                        for e in entries.EnumerateArray() ->
                            let kind = u64 e "type"

                            if kind > 2UL then
                                raise (Field $"an entry's \"type\" is {kind}, not 0, 1 or 2")

                            {
                                Term = u64 e "term"
                                Index = u64 e "index"
                                Type = int kind
                                Data = bytes e "data"
                            }
                    ]
                Error =
                    match field read "error" with
                    | e when e.ValueKind = JsonValueKind.Null -> None
                    | e when e.ValueKind = JsonValueKind.String -> Some(e.GetString())
                    | _ -> raise (Field "\"error\" is neither null nor a string")
            }
    with
    | Field reason -> Result.Error reason
    | :? InvalidOperationException as e -> Result.Error e.Message

/// One request line for an operation (open needs the directory; create too).
let request (dir: string) (operation: Operation) : string =
    use stream = new MemoryStream()

    do
        use w = new Utf8JsonWriter(stream)
        w.WriteStartObject()

        match operation with
        | Create metadata ->
            w.WriteString("op", "create")
            w.WriteString("dir", dir)
            w.WriteBase64String("metadata", ReadOnlySpan metadata)
        | Save(state, entries) ->
            w.WriteString("op", "save")
            w.WriteNumber("term", state.Term)
            w.WriteNumber("vote", state.Vote)
            w.WriteNumber("commit", state.Commit)
            w.WriteStartArray("entries")

            for e in entries do
                ReadAllJson.writeEntry w e.Term e.Index e.Kind e.Data

            w.WriteEndArray()
        | SaveSnapshot s ->
            w.WriteString("op", "snapshot")
            w.WriteNumber("index", s.Index)
            w.WriteNumber("term", s.Term)
        | Sync -> w.WriteString("op", "sync")
        | ReleaseLockTo i ->
            w.WriteString("op", "release")
            w.WriteNumber("index", i)
        | Close -> w.WriteString("op", "close")
        | Open s
        | OpenForRead s ->
            w.WriteString("op", "open")
            w.WriteString("dir", dir)
            w.WriteNumber("snapIndex", s.Index)
            w.WriteNumber("snapTerm", s.Term)
        | Repair -> invalidArg (nameof operation) "the protocol has no repair request"

        w.WriteEndObject()

    Encoding.UTF8.GetString(stream.ToArray())

/// Sends hello and reads the name and what the driver supports.
let hello (client: Client) : Result<Hello, Breach> =
    let req = "{\"op\":\"hello\"}"

    match client.Request req with
    | Result.Error b -> Result.Error b
    | Result.Ok(Refused(kind, message)) -> client.Reject(req, $"hello refused: {kind}: {message}")
    | Result.Ok(Answered root) ->
        let supports =
            match root.TryGetProperty "supports" with
            | true, s when s.ValueKind = JsonValueKind.Array ->
                Some
                    [
                        for v in s.EnumerateArray() do
                            if v.ValueKind = JsonValueKind.String then
                                v.GetString()
                    ]
            | _ -> None

        match supports with
        | None -> client.Reject(req, "no \"supports\" array")
        | Some names ->
            let has (name: string) = List.contains name names

            Result.Ok
                {
                    Name =
                        match root.TryGetProperty "name" with
                        | true, n when n.ValueKind = JsonValueKind.String -> n.GetString()
                        | _ -> "unnamed driver"
                    Supports =
                        {
                            Overwrite = has "overwrite"
                            Snapshot = has "snapshot"
                            Install = has "snapshot" && has "install"
                            Release = has "release"
                            Sync = has "sync"
                            BareAfterReopen = has "bare-after-reopen"
                        }
                }

/// Sends an operation; for an open, returns what the driver read (as the schema's dump).
/// A refusal is `Error(Choice2Of2(kind, message))`, a breach `Error(Choice1Of2 breach)`.
let send
    (client: Client)
    (dir: string)
    (operation: Operation)
    : Result<ReadAllJson.Dump option, Choice<Breach, string * string>> =
    let req = request dir operation

    match client.Request req with
    | Result.Error b -> Result.Error(Choice1Of2 b)
    | Result.Ok(Refused(kind, message)) -> Result.Error(Choice2Of2(kind, message))
    | Result.Ok(Answered root) ->
        match operation with
        | Open at
        | OpenForRead at ->
            match root.TryGetProperty "read" with
            | true, read ->
                match parseRead at read with
                | Result.Ok dump -> Result.Ok(Some dump)
                | Result.Error reason ->
                    match client.Reject(req, $"its \"read\": {reason}") with
                    | Result.Error b -> Result.Error(Choice1Of2 b)
                    | Result.Ok _ -> Result.Error(Choice1Of2(NotStarted "unreachable"))
            | _ ->
                match client.Reject(req, "an open's answer without \"read\"") with
                | Result.Error b -> Result.Error(Choice1Of2 b)
                | Result.Ok _ -> Result.Error(Choice1Of2(NotStarted "unreachable"))
        | _ -> Result.Ok None

/// The driver as an Oracle adapter, without power cuts: one process (started at the first Reset
/// and again after it dies), a fresh directory under `root` per run. A breach raises
/// ProtocolBreach, and every later call too, so a check ends quickly; `breach` tells it apart
/// from a divergence.
type DriverAdapter(command: Command, root: string, timeout: TimeSpan) =
    let mutable client: Client option = None
    let mutable greeting: Hello option = None
    let mutable breach: Breach option = None
    let mutable dir = ""

    let start () =
        match breach with
        | Some b -> raise (ProtocolBreach b)
        | None -> ()

        match client with
        | Some c -> c
        | None ->
            match Client.Start(command, timeout) with
            | Result.Error b ->
                breach <- Some b
                raise (ProtocolBreach b)
            | Result.Ok c ->
                client <- Some c

                match hello c with
                | Result.Ok h ->
                    greeting <- Some h
                    c
                | Result.Error b ->
                    breach <- Some b
                    raise (ProtocolBreach b)

    let call operation =
        let c = start ()

        match send c dir operation with
        | Result.Ok dump -> dump
        | Result.Error(Choice1Of2 b) ->
            breach <- Some b
            raise (ProtocolBreach b)
        | Result.Error(Choice2Of2(kind, message)) -> raise (DriverRefused(kind, message))

    /// The driver's hello (starting it if need be).
    member _.Hello =
        start () |> ignore
        greeting.Value

    /// The breach that ended the driver, if any.
    member _.Breach = breach

    /// The adapter for Oracle.check.
    member _.Adapter: Oracle.Adapter =
        {
            Name = $"driver {command.Program} {String.Join(' ', command.Arguments)}"
            Reset =
                fun () ->
                    // A breach raises at the run's first operation, where the oracle reports it.
                    (try
                        start () |> ignore
                     with ProtocolBreach _ ->
                         ())

                    dir <- Path.Combine(root, Guid.NewGuid().ToString("N"))
            Create = fun m -> call (Create m) |> ignore
            Save = fun s es -> call (Save(s, es)) |> ignore
            SaveSnapshot = fun s -> call (SaveSnapshot s) |> ignore
            Sync = fun () -> call Sync |> ignore
            ReleaseLockTo = fun i -> call (ReleaseLockTo i) |> ignore
            Close = fun () -> call Close |> ignore
            OpenAndReadAll =
                fun at ->
                    match call (Open at) with
                    | Some dump ->
                        match ReadAllJson.toOutcome dump with
                        | Result.Ok o -> o
                        | Result.Error kind -> raise (Oracle.ReadFailed kind)
                    | None -> invalidOp "an open without a read"
            PowerCut = None
        }

    /// Kills the driver.
    member _.Dispose() =
        client |> Option.iter (fun c -> c.Dispose())
        client <- None

    interface IDisposable with
        member this.Dispose() = this.Dispose()

/// Runs Oracle.check through the driver, with sequences using only what its hello lists and a
/// fresh directory under `root` per sequence. A protocol breach is `Error`, a report otherwise.
let check
    (command: Command)
    (root: string)
    (timeout: TimeSpan)
    (config: Oracle.Config)
    : Result<Oracle.Report, Breach> =
    use driver = new DriverAdapter(command, root, timeout)

    match
        (try
            Result.Ok driver.Hello
         with ProtocolBreach b ->
             Result.Error b)
    with
    | Result.Error b -> Result.Error b
    | Result.Ok h ->
        let report = Oracle.checkSupporting h.Supports driver.Adapter config

        match driver.Breach with
        | Some b -> Result.Error b
        | None -> Result.Ok report
