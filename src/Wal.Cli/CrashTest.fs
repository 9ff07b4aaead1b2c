/// `wal crash-test`: crash-tests any WAL implementation behind the driver protocol from a
/// recording of its own system calls (docs/crash-test.md).
module Wal.Cli.CrashTest

open System
open Argu
open Wal.Model
open Wal.Oracle.DriverProcess
open Wal.Simulation

type CrashTestArgs =
    | [<Unique>] Sequences of count: int
    | [<Unique>] States of count: int
    | [<Unique>] Seed of seed: int
    | [<Unique>] Etcd_Exact
    | [<Unique>] Faults
    | [<Unique>] Timeout of seconds: float
    | [<Unique>] Images_Per_State of count: int
    | [<Unique>] Work of dir: string
    | Keep

    interface IArgParserTemplate with
        member this.Usage =
            match this with
            | Sequences _ -> "generated sequences to run under strace (default 20)."
            | States _ -> "crash states to judge in all, spread across the sequences (default 2000)."
            | Seed _ -> "seed of the first sequence; the same seed runs the same sequences (default 1)."
            | Etcd_Exact -> "judge by etcd 3.4's exact durability rule rather than raft's contract."
            | Faults ->
                "run each sequence again with strace failing one sync (EIO) or write (ENOSPC) on the log's files."
            | Timeout _ -> "seconds the driver may take over one answer (default 10)."
            | Images_Per_State _ -> "crash images per disk state, at most (default 24)."
            | Work _ -> "directory for recordings, the drivers' logs and crash images (default: the temp directory)."
            | Keep ->
                "leave each sequence's strace recording (run-*.strace) and the driver's directory in the work directory."

/// The usage line for the part after `--`.
let commandUsage = "wal crash-test [options] -- CMD [ARGS...]"

/// Runs the crash test on the driver `command` and prints its figures; exit 1 on a divergence,
/// 2 on a protocol breach or a bad command line.
let run (args: ParseResults<CrashTestArgs>) (command: string list) =
    match command with
    | [] ->
        eprintfn "wal crash-test: no driver; usage: %s" commandUsage
        Commands.Exit.usage
    | program :: arguments ->
        let defaults =
            CrashTest.defaults
                {
                    Program = program
                    Arguments = arguments
                }

        let settings =
            { defaults with
                Sequences = args.GetResult(Sequences, defaultValue = defaults.Sequences)
                States = args.GetResult(States, defaultValue = defaults.States)
                Seed = args.GetResult(Seed, defaultValue = defaults.Seed)
                Rule =
                    if args.Contains Etcd_Exact then
                        DurabilityRule.EtcdExact
                    else
                        DurabilityRule.RaftContract
                Faults = args.Contains Faults
                Timeout = TimeSpan.FromSeconds(args.GetResult(Timeout, defaultValue = defaults.Timeout.TotalSeconds))
                ImagesPerState = args.GetResult(Images_Per_State, defaultValue = defaults.ImagesPerState)
                Work = args.GetResult(Work, defaultValue = defaults.Work)
                Keep = args.Contains Keep
            }

        if
            settings.Sequences < 1
            || settings.States < 0
            || settings.ImagesPerState < 1
            || settings.Timeout <= TimeSpan.Zero
        then
            eprintfn
                "wal crash-test: --sequences, --images-per-state and --timeout must be positive, --states not negative"

            Commands.Exit.usage
        else
            printfn
                "crash-testing %s: %d sequences, %d crash states, seed %d, %s rule%s"
                (String.Join(' ', command))
                settings.Sequences
                settings.States
                settings.Seed
                (if settings.Rule = DurabilityRule.EtcdExact then
                     "etcd's exact"
                 else
                     "raft's")
                (if settings.Faults then ", with injected faults" else "")

            let report =
                try
                    Ok(CrashTest.run settings)
                with ex ->
                    // The checker's own trouble (a recording that does not read, a full disk):
                    // not a verdict on the driver.
                    Error ex.Message

            match report with
            | Error message ->
                eprintfn "wal crash-test: %s" message
                Commands.Exit.usage
            | Ok report ->
                printfn "sequences:     %d" report.Sequences

                if settings.Faults then
                    printfn "fault runs:    %d" report.FaultRuns

                printfn "crash states:  %d" report.CrashStates
                printfn "states/second: %.0f" report.StatesPerSecond
                printfn "elapsed:       %.1f s" report.Elapsed.TotalSeconds
                printfn "divergences:   %d" report.Divergences

                if not report.Unmodelled.IsEmpty then
                    printfn "not modelled:  %s" (String.Join(", ", report.Unmodelled))

                match report.Verdict with
                | CrashTest.Passed -> ()
                | CrashTest.Diverged d -> printfn "\nDIVERGENCE (reproduce with --seed %d)\n%s" d.Seed d.Summary
                | CrashTest.Breached b -> printfn "\nPROTOCOL BREACH\n%s" (Breach.describe b)

                report.ExitCode
