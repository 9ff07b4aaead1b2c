/// Running programs from the build script: echo a command, run it with its output streaming
/// through, stop the script when it fails. Loading this file moves to the repository's root.
module Shell

open System
open System.Diagnostics
open System.IO

Environment.CurrentDirectory <- Path.GetFullPath(Path.Combine(__SOURCE_DIRECTORY__, ".."))

/// Prints the message and stops the script with exit code 1.
let fail (message: string) =
    eprintfn "build.fsx: %s" message
    exit 1

/// An argument as it would be typed into a shell, for echoing commands.
let quote (arg: string) =
    if
        arg = ""
        || arg |> Seq.exists (fun c -> Char.IsWhiteSpace c || c = ';' || c = '"')
    then
        "\"" + arg.Replace("\"", "\\\"") + "\""
    else
        arg

/// Echoes a command, runs it with its output streaming straight through, and returns its exit code.
let exec (command: string) (args: string list) =
    printfn "> %s" (String.concat " " (command :: List.map quote args))
    stdout.Flush()
    use proc = Process.Start(ProcessStartInfo(command, args, UseShellExecute = false))
    proc.WaitForExit()
    proc.ExitCode

/// Runs a command and stops the script with its exit code if it fails.
let run command args =
    match exec command args with
    | 0 -> ()
    | code -> exit code

/// Runs `dotnet args`, stopping the script if it fails.
let dotnet args = run "dotnet" args

/// Whether a program is on the PATH.
let onPath (program: string) =
    (Environment.GetEnvironmentVariable "PATH").Split(':')
    |> Array.exists (fun dir -> dir <> "" && File.Exists(Path.Combine(dir, program)))

/// Splits a command line into words as a shell would: blanks separate them, double quotes group them.
let words (line: string) =
    let folder (done', current: string option, quoted) (c: char) =
        match c with
        | '"' -> done', Some(defaultArg current ""), not quoted
        | c when Char.IsWhiteSpace c && not quoted ->
            (match current with
             | Some w -> w :: done'
             | None -> done'),
            None,
            false
        | c -> done', Some(defaultArg current "" + string c), quoted

    let done', current, _ = line |> Seq.fold folder ([], None, false)

    (match current with
     | Some w -> w :: done'
     | None -> done')
    |> List.rev
