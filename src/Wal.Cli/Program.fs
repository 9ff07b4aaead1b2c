/// The `wal` command-line tool.
module Wal.Cli.Program

open Argu
open Wal.Cli.Commands

type Command =
    | Version
    | [<CliPrefix(CliPrefix.None)>] Dump of ParseResults<Dump.DumpArgs>
    | [<CliPrefix(CliPrefix.None)>] Verify of ParseResults<VerifyArgs>
    | [<CliPrefix(CliPrefix.None)>] Repair of ParseResults<RepairArgs>
    | [<CliPrefix(CliPrefix.None)>] Check_Dir of ParseResults<CheckDir.CheckDirArgs>
    | [<CliPrefix(CliPrefix.None)>] Check_Trace of ParseResults<Traces.CheckTraceArgs>
    | [<CliPrefix(CliPrefix.None)>] Replay of ParseResults<Traces.ReplayArgs>
    | [<CliPrefix(CliPrefix.None)>] Explore of ParseResults<Explore.ExploreArgs>
    | [<CliPrefix(CliPrefix.None)>] Driver of ParseResults<Driver.DriverArgs>
    | [<CliPrefix(CliPrefix.None)>] Crash_Test of ParseResults<CrashTest.CrashTestArgs>

    interface IArgParserTemplate with
        member this.Usage =
            match this with
            | Version -> "print the tool's version and exit."
            | Dump _ -> "show a WAL directory record by record, or its ReadAll as JSON (read-only)."
            | Verify _ -> "check a WAL's CRC chain, metadata and snapshot record, as etcd's Verify (read-only)."
            | Repair _ -> "cut off a torn last record, as etcd's Repair (keeps a *.broken copy)."
            | Check_Dir _ ->
                "report every invariant a WAL directory breaks, with Wal.Model's reference decoder (read-only)."
            | Check_Trace _ -> "check a trace's observations against the model (docs/traces.md)."
            | Replay _ -> "run a trace against the engine on the simulated disk and judge it with the model."
            | Explore _ -> "explore crash states of the engine against the model (the main job)."
            | Driver _ -> "serve the driver protocol (docs/driver-protocol.md) over the engine, on stdin/stdout."
            | Crash_Test _ ->
                "crash-test any WAL behind a driver (docs/crash-test.md): wal crash-test [options] -- CMD [ARGS...]."

/// "wal VERSION": the package version the tool was built as (with its commit, when the build knew it).
let version () =
    let assembly = typeof<Command>.Assembly

    let informational =
        assembly.GetCustomAttributes(typeof<System.Reflection.AssemblyInformationalVersionAttribute>, false)
        |> Array.tryHead
        |> Option.map (fun a -> (a :?> System.Reflection.AssemblyInformationalVersionAttribute).InformationalVersion)

    let shown =
        informational
        |> Option.defaultWith (fun () -> string (assembly.GetName().Version))

    $"wal {shown}"

/// Argu's check of the command tree's structure, which `main` skips (it costs a large part of the
/// tool's start): raises when the tree is malformed. The tests run it.
let checkCommandTree () =
    ArgumentParser.Create<Command>(programName = "wal", checkStructure = true)
    |> ignore

/// The tool: `argv` parsed and run, the exit code returned. Output goes through `Console.Out`
/// (callers in another program may redirect it); `entry` is the executable's entry point.
let main argv =
    // Argu's check of the command tree's structure costs a large part of the tool's start; the
    // tree is fixed at build time, and a test (CliTests) runs the check instead.
    let parser =
        ArgumentParser.Create<Command>(programName = "wal", checkStructure = false)

    // crash-test takes the driver's command after `--`, which Argu would read as its own.
    let argv, command =
        match Array.tryFindIndex ((=) "--") argv with
        | Some i when argv.Length > 0 && argv[0] = "crash-test" -> argv[.. i - 1], List.ofArray argv[i + 1 ..]
        | _ -> argv, []

    try
        let results = parser.ParseCommandLine(argv, raiseOnUsage = true)

        if results.Contains Version then
            printfn "%s" (version ())
            Exit.ok
        else

            match results.GetSubCommand() with
            | Version -> Exit.ok
            | Dump args -> Dump.run args
            | Verify args -> Commands.verify args
            | Repair args -> Commands.repair args
            | Check_Dir args -> CheckDir.run args
            | Check_Trace args -> Traces.checkTrace args
            | Replay args -> Traces.replay args
            | Explore args -> Explore.run args
            | Driver args -> Driver.run args
            | Crash_Test args -> CrashTest.run args command
    with
    | :? ArguParseException as e ->
        eprintfn "%s" e.Message

        if e.ErrorCode = ErrorCode.HelpText then
            Exit.ok
        else
            Exit.usage
    | CommandError(message, code) ->
        eprintfn "wal: %s" message
        code
    | :? Wal.WalException as e ->
        match osReason e with
        | Some reason ->
            eprintfn "wal: %O: %s" e.Kind (withReason e.Message reason)
            Exit.usage
        | None ->
            eprintfn "wal: %O: %s" e.Kind e.Message
            Exit.walProblem
    | :? System.IO.FileNotFoundException
    | :? System.IO.DirectoryNotFoundException as e ->
        eprintfn "wal: %s" e.Message
        Exit.walProblem
    | :? System.IO.IOException
    | :? System.UnauthorizedAccessException as e ->
        eprintfn "wal: %s" (osReason e |> Option.defaultValue e.Message)
        Exit.usage

/// The executable's entry point: `main`, with output sent to this process's stdout directly.
[<EntryPoint>]
let entry argv =
    Output.toStdout <- true
    main argv
