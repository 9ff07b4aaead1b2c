/// The driver protocol (docs/driver-protocol.md) from the checker's side: the engine's driver
/// (`wal driver`) and the Python example (examples/drivers/naive.py) pass Oracle.check through
/// it, and drivers that break it (junk, death, a hang, two answers) give a typed breach within
/// the timeout, never a hang; numbers written as decimal strings are accepted.
module Wal.Properties.DriverTests

open System
open System.Diagnostics
open System.IO
open Expecto
open FsCheck
open FsCheck.FSharp
open Wal.Model
open Wal.Oracle
open Wal.Oracle.DriverProcess
open Wal.Oracle.Driver
open Wal.Properties.Support

/// The engine's driver, as built beside the tests.
let engine =
    {
        Program = "dotnet"
        Arguments = [ Path.Combine(testDirectory, "wal.dll"); "driver" ]
    }

/// The repository's examples/drivers, found upwards from the test program.
let examples =
    let rec up (dir: DirectoryInfo) =
        if isNull dir then
            failwith "examples/drivers not found above the test program"
        else
            let candidate = Path.Combine(dir.FullName, "examples", "drivers")

            if Directory.Exists candidate then
                candidate
            else
                up dir.Parent

    lazy (up (DirectoryInfo testDirectory))

let python (script: string) (args: string list) =
    {
        Program = "python3"
        Arguments = Path.Combine(examples.Value, script) :: args
    }

let private shell (script: string) =
    {
        Program = "/bin/sh"
        Arguments = [ "-c"; script ]
    }

let private config tests =
    { Oracle.Config.standard with
        Tests = tests
        MaxOperations = 25
    }

let private passes (command: Command) (tests: int) =
    use dir = new TempDir()

    match Driver.check command dir.Root (TimeSpan.FromSeconds 20.0) (config tests) with
    | Ok(Oracle.Passed(_, n)) -> Expect.equal n tests "every sequence ran"
    | Ok report -> failtest $"{report}"
    | Error breach -> failtest (Breach.describe breach)

/// Runs a check that must end in a breach, within `within` seconds.
let private breaks (command: Command) (timeout: float) (within: float) =
    use dir = new TempDir()
    let clock = Stopwatch.StartNew()

    let result = Driver.check command dir.Root (TimeSpan.FromSeconds timeout) (config 3)

    Expect.isLessThan clock.Elapsed.TotalSeconds within "the checker does not hang"

    match result with
    | Error breach -> breach
    | Ok report -> failtest $"a breach was expected, got {report}"

let private hello = "{\"ok\":true,\"name\":\"t\",\"supports\":[]}"

let tests =
    testList
        "DriverTests"
        [
            test "the engine's driver passes Oracle.check through the protocol" { passes engine 30 }

            test "naive.py (correct) passes Oracle.check through the protocol" { passes (python "naive.py" []) 30 }

            test "naive.py with its bug passes without power cuts (crash-test is what catches it)" {
                passes (python "naive.py" [ "--bug"; "no-fsync-on-term-change" ]) 10
            }

            test "numbers written as decimal strings are accepted" {
                passes (python "strings.py" [ "dotnet"; Path.Combine(testDirectory, "wal.dll"); "driver" ]) 10
            }

            test "a driver that reads what was not written is falsified, with a trace" {
                // The engine's driver behind a filter that makes every read's commit index 0.
                let filter =
                    "import re,subprocess,sys\n"
                    + "p=subprocess.Popen(sys.argv[1:],stdin=subprocess.PIPE,stdout=subprocess.PIPE,text=True)\n"
                    + "for l in sys.stdin:\n"
                    + " p.stdin.write(l);p.stdin.flush()\n"
                    + " sys.stdout.write(re.sub(r'\"commit\":\\d+','\"commit\":0',p.stdout.readline()));sys.stdout.flush()\n"

                use dir = new TempDir()

                let command =
                    {
                        Program = "python3"
                        Arguments = [ "-c"; filter ] @ engine.Program :: engine.Arguments
                    }

                match Driver.check command dir.Root (TimeSpan.FromSeconds 20.0) (config 10) with
                | Ok(Oracle.Falsified(_, c)) -> Expect.stringContains c.Trace "open" "the trace shows the read"
                | Ok report -> failtest $"the wrong reads passed: {report}"
                | Error breach -> failtest (Breach.describe breach)
            }

            test "the generators ask only for what a driver supports" {
                let none: Scenarios.Supports =
                    {
                        Overwrite = false
                        Snapshot = false
                        Release = false
                        Sync = false
                    }

                for seed in 1..50 do
                    let steps =
                        (Gen.sampleWithSeed (Rnd(uint64 seed, 1UL)) 40 1 (Scenarios.stepsSupporting none false))[0]

                    steps
                    |> List.fold
                        (fun last step ->
                            match step with
                            | Do(Save(_, (first :: _ as entries))) ->
                                Expect.equal first.Index (last + 1UL) "no overwrite"
                                (List.last entries).Index
                            | Do(SaveSnapshot _ | Sync | ReleaseLockTo _) -> failtest $"asked for {step}"
                            | Do(Open at) ->
                                Expect.equal at Snapshot.zero "no open at a snapshot"
                                last
                            | _ -> last)
                        0UL
                    |> ignore
            }

            test "a driver that writes junk is Malformed, naming what it said" {
                match breaks (shell "read l; echo 'this is not json'; cat >/dev/null") 10.0 10.0 with
                | Malformed(_, line, _) -> Expect.equal line "this is not json" "the junk is named"
                | other -> failtest (Breach.describe other)
            }

            test "a driver that dies is Died" {
                match breaks (shell "read l; echo 'going' >&2; exit 3") 10.0 10.0 with
                | Died(request, said) ->
                    Expect.stringContains request "hello" "the request"
                    Expect.stringContains said "going" "its stderr"
                | other -> failtest (Breach.describe other)
            }

            test "a driver that closes stdout is Died" {
                match breaks (shell "exec 1>&-; sleep 20") 10.0 10.0 with
                | Died _ -> ()
                | other -> failtest (Breach.describe other)
            }

            test "a driver that hangs is TimedOut within the timeout" {
                match breaks (shell $"read l; echo '{hello}'; read l; sleep 60") 1.0 10.0 with
                | TimedOut(request, _, said) ->
                    Expect.stringContains request "create" "the request"
                    Expect.equal said hello "what it last said"
                | other -> failtest (Breach.describe other)
            }

            test "a driver that answers twice is AnsweredTwice" {
                match
                    breaks
                        (shell $"read l; printf '%%s\\n%%s\\n' '{hello}' '{{\"ok\":true}}'; cat >/dev/null")
                        10.0
                        10.0
                with
                | AnsweredTwice(_, extra) -> Expect.equal extra "{\"ok\":true}" "the extra line"
                | other -> failtest (Breach.describe other)
            }

            test "a driver that cannot be started is NotStarted" {
                match
                    breaks
                        {
                            Program = "/nonexistent/driver"
                            Arguments = []
                        }
                        10.0
                        10.0
                with
                | NotStarted _ -> ()
                | other -> failtest (Breach.describe other)
            }

            test "a read with a number past 2^64 is Malformed" {
                let read =
                    "{\"metadata\":\"\",\"term\":18446744073709551616,\"vote\":0,\"commit\":0,\"entries\":[],\"error\":null}"

                use doc = Text.Json.JsonDocument.Parse read

                Expect.isError (Driver.parseRead { Index = 0UL; Term = 0UL } doc.RootElement) "2^64 is out of range"
            }
        ]
