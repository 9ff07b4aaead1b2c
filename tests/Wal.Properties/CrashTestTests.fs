/// `wal crash-test`'s engine (Wal.Simulation.CrashTest) on real drivers under real strace: the
/// engine's driver and naive.py pass under both durability rules, naive.py's planted bugs are
/// caught (the missing fsync with a short counterexample naming a recorded system call, the
/// acknowledgement after a failed write under --faults), and a driver that breaks the protocol
/// ends the run with a breach within the timeout.
module Wal.Properties.CrashTestTests

open System
open System.Diagnostics
open System.IO
open Expecto
open Wal.Model
open Wal.Oracle.DriverProcess
open Wal.Simulation
open Wal.Properties.Support
open Wal.Properties.DriverTests

let private settings (driver: Command) (work: TempDir) sequences states =
    { CrashTest.defaults driver with
        Sequences = sequences
        States = states
        Work = work.Root
        Timeout = TimeSpan.FromSeconds 20.0
    }

let private passes (settings: CrashTest.Settings) =
    let report = CrashTest.run settings

    match report.Verdict with
    | CrashTest.Passed ->
        Expect.equal report.Sequences settings.Sequences "every sequence ran"
        Expect.isGreaterThan report.CrashStates 0 "crash states were judged"
        Expect.equal report.ExitCode 0 "exit 0"
    | CrashTest.Diverged d -> failtest d.Summary
    | CrashTest.Breached b -> failtest (Breach.describe b)

let private diverges (settings: CrashTest.Settings) =
    let report = CrashTest.run settings

    match report.Verdict with
    | CrashTest.Diverged d ->
        Expect.equal report.ExitCode 1 "exit 1"
        d
    | CrashTest.Passed -> failtest $"the bug was not caught in {report.CrashStates} crash states"
    | CrashTest.Breached b -> failtest (Breach.describe b)

let private breaches (settings: CrashTest.Settings) (within: float) =
    let clock = Stopwatch.StartNew()
    let report = CrashTest.run settings
    Expect.isLessThan clock.Elapsed.TotalSeconds within "the crash test does not hang"
    Expect.equal report.ExitCode 2 "exit 2"

    match report.Verdict with
    | CrashTest.Breached b -> b
    | other -> failtest $"a breach was expected, got {other}"

let private shell (script: string) =
    {
        Program = "/bin/sh"
        Arguments = [ "-c"; script ]
    }

/// Every recorded fixture (tests/Wal.Properties/strace) replays the same after
/// `Strace.pruneOutside` blanked what names nothing under its tree.
let private pruningChangesNoReplay =
    test "pruning the calls that name nothing under the tree changes no replay" {
        let setup: ReplaySetup =
            {
                Root = "/tmp/sf/w"
                WorkingDirectory = "/tmp/sf"
            }

        let replay text =
            match Replay.ofText setup DiskState.empty text with
            | Ok r ->
                (r.Steps |> List.map (fun s -> s.Number, s.Call, s.Path, s.State)), r.Acknowledgements, r.Unmodelled
            | Error e -> failwith $"line {e.Line}: {e.Message}"

        let fixtures =
            Directory.GetFiles(Path.Combine(AppContext.BaseDirectory, "strace"), "*.txt")

        Expect.isGreaterThan fixtures.Length 10 "the fixtures are there"

        for file in fixtures do
            let text = File.ReadAllText file
            let pruned = Strace.pruneOutside setup.Root text
            Expect.equal (pruned.Split('\n').Length) (text.Split('\n').Length) "line numbers are kept"
            Expect.equal (replay pruned) (replay text) $"{Path.GetFileName file} replays the same"
    }

let tests =
    testList
        "CrashTestTests"
        [
            pruningChangesNoReplay
            test "the engine's driver: no divergence under raft's contract" {
                use work = new TempDir()
                passes (settings engine work 2 60)
            }

            test "the engine's driver: no divergence under etcd's exact rule" {
                use work = new TempDir()

                passes
                    { settings engine work 2 60 with
                        Rule = DurabilityRule.EtcdExact
                    }
            }

            test "naive.py (correct) passes" {
                use work = new TempDir()
                passes (settings (python "naive.py" []) work 3 150)
            }

            test "naive.py's missing fsync on a term change is caught, in at most 6 operations at a recorded call" {
                use work = new TempDir()

                let d =
                    diverges (settings (python "naive.py" [ "--bug"; "no-fsync-on-term-change" ]) work 10 1000)

                Expect.isLessThanOrEqual d.Shrunk 6 $"shrunk to at most 6 moves:\n{d.Summary}"
                Expect.stringContains d.CrashPoint "system call" "the crash point is a recorded system call"
                Expect.stringContains d.Trace "crash" "the trace shows the crash"
                Expect.stringContains d.Reason "allowed" "the read is compared with what the model allows"
            }

            test "a driver that hangs ends the run with a breach (exit 2) within the timeout" {
                use work = new TempDir()
                // Answers hello, then never answers again.
                let hangs =
                    shell "read l; echo '{\"ok\":true,\"name\":\"t\",\"supports\":[]}'; while read l; do :; done"

                match
                    breaches
                        { settings hangs work 2 20 with
                            Timeout = TimeSpan.FromSeconds 1.0
                        }
                        30.0
                with
                | TimedOut _ -> ()
                | other -> failtest $"a timeout was expected: {Breach.describe other}"
            }

            test "a driver that writes junk ends the run with a breach (exit 2)" {
                use work = new TempDir()

                match breaches (settings (shell "read l; echo junk; sleep 5") work 2 20) 30.0 with
                | Malformed _ -> ()
                | other -> failtest $"junk was expected: {Breach.describe other}"
            }

            test "with --faults the engine's driver fails closed and recovers as the model allows" {
                use work = new TempDir()

                passes
                    { settings engine work 3 90 with
                        Faults = true
                    }
            }

            test "with --faults naive.py acknowledging after a failed write or fsync is caught" {
                use work = new TempDir()

                let d =
                    diverges
                        { settings (python "naive.py" [ "--bug"; "ack-after-fsync-error" ]) work 8 160 with
                            Faults = true
                        }

                Expect.stringContains d.CrashPoint "strace failed" $"the injected fault is named:\n{d.Summary}"
            }
        ]
