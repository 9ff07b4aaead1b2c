/// The driver protocol's transport (docs/driver-protocol.md): a driver process that reads one
/// JSON request a line on stdin and answers each with exactly one line on stdout. A driver that
/// dies, hangs, writes junk or answers more or less than once is a typed `Breach` naming what it
/// last said; the client never hangs, and the process is killed when the client is disposed.
module Wal.Oracle.DriverProcess

open System
open System.Collections.Concurrent
open System.Diagnostics
open System.IO
open System.Text
open System.Text.Json
open System.Threading

/// How to start a driver: a program and its arguments.
type Command =
    {
        Program: string
        Arguments: string list
    }

/// How the driver broke the protocol. `LastSaid` is its last stdout line (or the tail of stderr).
type Breach =
    /// The driver exited, or closed stdout, before answering.
    | Died of request: string * lastSaid: string
    /// No answer within the timeout.
    | TimedOut of request: string * seconds: float * lastSaid: string
    /// An answer that is not the JSON the protocol asks for.
    | Malformed of request: string * line: string * reason: string
    /// More than one line for one request.
    | AnsweredTwice of request: string * extra: string
    /// The program could not be started.
    | NotStarted of reason: string

[<RequireQualifiedAccess>]
module Breach =
    let private clip (s: string) =
        if s.Length > 300 then s.Substring(0, 300) + "..." else s

    /// One paragraph for reports.
    let describe (breach: Breach) =
        match breach with
        | Died(request, last) -> $"the driver died before answering {clip request}; it last said: {clip last}"
        | TimedOut(request, seconds, last) ->
            $"the driver did not answer {clip request} within {seconds} s; it last said: {clip last}"
        | Malformed(request, line, reason) -> $"the driver answered {clip request} with {clip line}: {reason}"
        | AnsweredTwice(request, extra) -> $"the driver answered {clip request} more than once: {clip extra}"
        | NotStarted reason -> $"the driver could not be started: {reason}"

/// An answer: ok with its fields, or a typed failure.
type Answer =
    | Answered of JsonElement
    | Refused of kind: string * message: string

/// The longest answer line accepted (a read of a large log is one line).
let maxLine = 256 * 1024 * 1024

type private Line =
    | Text of string
    | TooLong
    | End

/// A running driver process. Not thread-safe: one request at a time.
type Client private (proc: Process, timeout: TimeSpan) =
    let lines = new BlockingCollection<Line>()
    let stderrTail = StringBuilder()
    let mutable lastSaid = ""
    let mutable broken: Breach option = None

    let reader =
        Thread(
            (fun () ->
                let stream = proc.StandardOutput.BaseStream
                let buffer = Array.zeroCreate<byte> 65536
                let line = new MemoryStream()
                let mutable tooLong = false

                try
                    try
                        let mutable n = stream.Read(buffer, 0, buffer.Length)

                        while n > 0 do
                            let mutable start = 0

                            for i in 0 .. n - 1 do
                                if buffer[i] = byte '\n' then
                                    if not tooLong then
                                        line.Write(buffer, start, i - start)
                                        lines.Add(Text(Encoding.UTF8.GetString(line.GetBuffer(), 0, int line.Length)))
                                    else
                                        lines.Add TooLong

                                    line.SetLength 0L
                                    tooLong <- false
                                    start <- i + 1

                            if not tooLong then
                                if line.Length + int64 (n - start) > int64 maxLine then
                                    tooLong <- true
                                    line.SetLength 0L
                                else
                                    line.Write(buffer, start, n - start)

                            n <- stream.Read(buffer, 0, buffer.Length)

                        if line.Length > 0L then
                            lines.Add(Text(Encoding.UTF8.GetString(line.GetBuffer(), 0, int line.Length)))
                    with _ ->
                        ()
                finally
                    lines.Add End),
            IsBackground = true
        )

    do
        proc.ErrorDataReceived.Add(fun e ->
            if not (isNull e.Data) then
                lock stderrTail (fun () ->
                    stderrTail.Append(e.Data).Append('\n') |> ignore

                    if stderrTail.Length > 4096 then
                        stderrTail.Remove(0, stderrTail.Length - 4096) |> ignore))

        proc.BeginErrorReadLine()
        reader.Start()

    let said () =
        let err = lock stderrTail (fun () -> stderrTail.ToString().Trim())

        match lastSaid, err with
        | "", "" -> "nothing"
        | out, "" -> out
        | "", err -> $"(stderr) {err}"
        | out, err -> $"{out} (stderr: {err})"

    let fail breach =
        broken <- Some breach
        Result.Error breach

    // A driver that ended stdout has usually exited: let its last stderr lines arrive first.
    let died request =
        try
            if proc.WaitForExit 500 then
                proc.WaitForExit()
        with _ ->
            ()

        fail (Died(request, said ()))

    /// Starts the driver. `timeout` bounds every answer.
    static member Start(command: Command, timeout: TimeSpan) : Result<Client, Breach> =
        let info = ProcessStartInfo(command.Program)

        for a in command.Arguments do
            info.ArgumentList.Add a

        info.RedirectStandardInput <- true
        info.RedirectStandardOutput <- true
        info.RedirectStandardError <- true
        info.UseShellExecute <- false

        try
            let proc = Process.Start info
            Result.Ok(new Client(proc, timeout))
        with ex ->
            Result.Error(NotStarted $"{command.Program}: {ex.Message}")

    /// The breach that ended this client, if any; every later request fails with it.
    member _.Broken = broken

    /// Sends one request (one line of JSON) and waits for its one answer line.
    member _.Request(request: string) : Result<Answer, Breach> =
        match broken with
        | Some b -> Result.Error b
        | None ->
            let mutable pending = Unchecked.defaultof<Line>

            if lines.TryTake(&pending) then
                match pending with
                | Text extra -> fail (AnsweredTwice(lastSaid, extra))
                | TooLong -> fail (AnsweredTwice(lastSaid, "(a line too long)"))
                | End -> died request
            else
                let sent =
                    try
                        proc.StandardInput.Write(request)
                        proc.StandardInput.Write('\n')
                        proc.StandardInput.Flush()
                        true
                    with _ ->
                        false

                if not sent then
                    died request
                else
                    let mutable answer = Unchecked.defaultof<Line>

                    if not (lines.TryTake(&answer, timeout)) then
                        fail (TimedOut(request, timeout.TotalSeconds, said ()))
                    else
                        match answer with
                        | End -> died request
                        | TooLong -> fail (Malformed(request, "(a line)", $"longer than {maxLine} bytes"))
                        | Text line ->
                            lastSaid <- line

                            let parsed =
                                try
                                    let doc = JsonDocument.Parse(line)
                                    let root = doc.RootElement.Clone()
                                    doc.Dispose()

                                    if root.ValueKind <> JsonValueKind.Object then
                                        Result.Error "not a JSON object"
                                    else
                                        match root.TryGetProperty "ok" with
                                        | true, ok when ok.ValueKind = JsonValueKind.True -> Result.Ok(Answered root)
                                        | true, ok when ok.ValueKind = JsonValueKind.False ->
                                            let text name =
                                                match root.TryGetProperty(name: string) with
                                                | true, v when v.ValueKind = JsonValueKind.String -> v.GetString()
                                                | _ -> ""

                                            match text "error" with
                                            | "" -> Result.Error "\"ok\":false without an \"error\" kind"
                                            | kind -> Result.Ok(Refused(kind, text "message"))
                                        | _ -> Result.Error "no \"ok\":true or \"ok\":false"
                                with :? JsonException as e ->
                                    Result.Error $"not JSON: {e.Message}"

                            match parsed with
                            | Result.Ok a -> Result.Ok a
                            | Result.Error reason -> fail (Malformed(request, line, reason))

    /// Records a breach found in an answer's contents (a field missing or of the wrong type).
    member _.Reject(request: string, reason: string) =
        fail (Malformed(request, lastSaid, reason))

    /// Sends quit, closes stdin and waits up to `wait` for the process to exit (a tracer such as
    /// strace must be let finish its recording); true when it exited. Dispose still follows.
    member _.Quit(wait: TimeSpan) =
        try
            if not proc.HasExited then
                if broken.IsNone then
                    proc.StandardInput.Write("{\"op\":\"quit\"}\n")
                    proc.StandardInput.Flush()

                proc.StandardInput.Close()

            proc.WaitForExit wait
        with _ ->
            proc.HasExited

    /// Sends quit (without waiting long) and kills the process if it is still running.
    member _.Dispose() =
        try
            if broken.IsNone && not proc.HasExited then
                proc.StandardInput.Write("{\"op\":\"quit\"}\n")
                proc.StandardInput.Flush()
                proc.StandardInput.Close()
                proc.WaitForExit(1000) |> ignore
        with _ ->
            ()

        try
            if not proc.HasExited then
                proc.Kill true
                proc.WaitForExit(5000) |> ignore
        with _ ->
            ()

        proc.Dispose()

    interface IDisposable with
        member this.Dispose() = this.Dispose()
