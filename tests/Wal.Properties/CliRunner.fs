/// Runs the `wal` tool for the CLI suites: in this process through its entry point (stdout,
/// stderr and stdin swapped), or as a child process, for what needs another process's
/// privileges.
module Wal.Properties.CliRunner

open System
open System.Diagnostics
open System.IO
open System.Security.Cryptography
open Wal.Properties.Support

/// Runs `wal args` with `input` on stdin; the exit code, stdout and stderr.
let walWithInput (input: string) (args: string list) =
    let out, err = new StringWriter(), new StringWriter()
    let oldOut, oldErr, oldIn = Console.Out, Console.Error, Console.In
    Console.SetOut out
    Console.SetError err
    Console.SetIn(new StringReader(input))

    let code =
        try
            Wal.Cli.Program.main (Array.ofList args)
        finally
            Console.SetOut oldOut
            Console.SetError oldErr
            Console.SetIn oldIn

    code, out.ToString(), err.ToString()

/// Runs `wal args`; the exit code, stdout and stderr.
let wal (args: string list) = walWithInput "" args

/// Runs `PREFIX... dotnet wal.dll args` as a child process (the tool is built beside the tests).
let walProcess (prefix: string list) (args: string list) =
    let dll = Path.Combine(testDirectory, "wal.dll")

    let command, rest =
        match prefix with
        | first :: others -> first, others @ [ "dotnet"; dll ] @ args
        | [] -> "dotnet", dll :: args

    let info =
        ProcessStartInfo(
            command,
            rest,
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true
        )

    use proc = Process.Start info
    let err = proc.StandardError.ReadToEndAsync()
    let out = proc.StandardOutput.ReadToEnd()
    proc.WaitForExit()
    proc.ExitCode, out, err.Result

/// An etcd corpus directory copied beside the tests.
let corpus (parts: string list) =
    Path.Combine(testDirectory :: "corpus" :: parts |> Array.ofList)

/// Copies a directory tree into `target`.
let rec copyTree (source: string) (target: string) =
    Directory.CreateDirectory target |> ignore

    for f in Directory.GetFiles source do
        File.Copy(f, Path.Combine(target, Path.GetFileName f))

    for d in Directory.GetDirectories source do
        copyTree d (Path.Combine(target, Path.GetFileName d))

/// Every file under a directory with a hash of its bytes, to show nothing changed.
let fingerprint (dir: string) =
    [
        for f in Directory.GetFiles(dir, "*", SearchOption.AllDirectories) |> Array.sort ->
            Path.GetRelativePath(dir, f), Convert.ToHexString(SHA256.HashData(File.ReadAllBytes f))
    ]
