/// Output in chunks, for commands that print a line per record or one JSON document of a whole
/// log: text goes to `Console.Out` (a terminal, a pipe, or the tests' writer) 64 KiB at a time,
/// never a line at a time (the console flushes every write), and nothing holds more than a chunk.
module Wal.Cli.Output

open System
open System.Buffers
open System.IO
open System.Text
open System.Text.Json

/// How much text is gathered before it is written.
let chunkChars = 64 * 1024

/// Lines for `target`, gathered and written a chunk at a time; Flush (or Dispose) writes the rest.
[<Sealed>]
type Lines(target: TextWriter) =
    let buffer = StringBuilder(chunkChars + 1024)

    let flush () =
        if buffer.Length > 0 then
            target.Write buffer
            buffer.Clear() |> ignore

    /// The line being built: append to it, then call `EndLine`.
    member _.Builder = buffer

    /// Ends the line being built; writes the gathered text once it fills a chunk.
    member _.EndLine() =
        buffer.Append(target.NewLine) |> ignore

        if buffer.Length >= chunkChars then
            flush ()

    /// One whole line.
    member this.Line(text: string) =
        buffer.Append text |> ignore
        this.EndLine()

    /// Writes what is gathered.
    member _.Flush() =
        flush ()
        target.Flush()

    interface IDisposable with
        member this.Dispose() = this.Flush()

/// Whether this process's own stdout is where output goes: set by the executable's entry point,
/// so that a JSON document goes to the stdout stream as bytes. Callers of `Program.main` in
/// another program (the tests) leave it unset, and output goes through `Console.Out`, which they
/// may have redirected.
let mutable toStdout = false

/// One JSON document, written as it is built, a chunk at a time: to this process's stdout as
/// bytes when `toStdout`, else to `Console.Out` as text (the document is ASCII: Utf8JsonWriter
/// escapes the rest).
[<Sealed>]
type JsonText() =
    let options = JsonWriterOptions(SkipValidation = true)
    // A plain file stream on descriptor 1: the console's own stream takes a lock on every write.
    let stdout =
        if toStdout then
            new FileStream(new Microsoft.Win32.SafeHandles.SafeFileHandle(nativeint 1, false), FileAccess.Write, 1)
        else
            null

    let bytes = ArrayBufferWriter<byte>(chunkChars + 4096)

    let writer =
        if isNull stdout then
            new Utf8JsonWriter(bytes, options)
        else
            new Utf8JsonWriter(stdout, options)

    let decoder = Encoding.UTF8.GetDecoder()
    let mutable chars = Array.zeroCreate<char>(chunkChars + 4096)

    let pass () =
        writer.Flush()

        if isNull stdout && bytes.WrittenCount > 0 then
            let span = bytes.WrittenSpan
            let need = decoder.GetCharCount(span, false)

            if need > chars.Length then
                chars <- Array.zeroCreate need

            let n = decoder.GetChars(span, Span chars, false)
            Console.Out.Write(chars, 0, n)
            bytes.ResetWrittenCount()

    /// The writer to build the document with; call `Written` after each piece.
    member _.Writer = writer

    /// Passes the document on once a chunk of it is built.
    member _.Written() =
        if writer.BytesPending + bytes.WrittenCount >= chunkChars then
            pass ()

    /// Passes the rest of the document on, with a line end.
    member _.Finish() =
        pass ()

        if isNull stdout then
            Console.Out.WriteLine()
            Console.Out.Flush()
        else
            stdout.Write(Encoding.UTF8.GetBytes(Console.Out.NewLine))
            stdout.Flush()

    interface IDisposable with
        member _.Dispose() =
            writer.Dispose()

            if not (isNull stdout) then
                stdout.Dispose()
