/// The driver protocol (docs/driver-protocol.md) from the checker's side: the engine's driver
/// (`wal driver`), the Python example (examples/drivers/naive.py) and the library drivers under
/// interop/ (FasterLog, DotNext) pass Oracle.check through it, and drivers that break it (junk,
/// death, a hang, two answers) give a typed breach within the timeout, never a hang; numbers
/// written as decimal strings are accepted.
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

/// The repository's examples/drivers.
let examples = lazy (Path.Combine(repository.Value, "examples", "drivers"))

/// etcd 3.4's wal behind the protocol: `etcd-peer driver` (interop/etcd/peer/driver.go).
let private etcd (segmentBytes: int64 option) =
    {
        Program = EtcdPeer.path.Value
        Arguments = "driver" :: (segmentBytes |> Option.map string |> Option.toList)
    }

/// A library driver under interop/ (FasterLog, DotNext), as built by `build.fsx build` in the
/// test program's configuration: `dotnet interop/NAME/bin/CONFIG/net10.0/DLL`.
let interopDriver (name: string) (dll: string) =
    let configuration = DirectoryInfo(testDirectory).Parent.Name
    let root = repository.Value

    {
        Program = "dotnet"
        Arguments = [ Path.Combine(root, "interop", name, "bin", configuration, "net10.0", dll) ]
    }

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

let private passesWith (command: Command) (config: Oracle.Config) =
    use dir = new TempDir()

    match Driver.check command dir.Root (TimeSpan.FromSeconds 20.0) config with
    | Ok(Oracle.Passed(_, n)) -> Expect.equal n config.Tests "every sequence ran"
    | Ok report -> failtest $"{report}"
    | Error breach -> failtest (Breach.describe breach)

let private passes (command: Command) (tests: int) = passesWith command (config tests)

/// The example session of docs/driver-protocol.md ("A full session"): each request with the
/// answer shown for it.
let private documentedSession =
    lazy
        (let lines =
            File.ReadAllLines(Path.Combine(repository.Value, "docs", "driver-protocol.md"))
            |> Array.skipWhile (fun l -> l <> "## A full session")
            |> Array.skipWhile (fun l -> l <> "```text")
            |> Array.skip 1
            |> Array.takeWhile (fun l -> l <> "```")
            |> List.ofArray

         let rec pairs (lines: string list) =
             match lines with
             | request :: answer :: rest when request.StartsWith "> " && answer.StartsWith "< " ->
                 (request.Substring 2, answer.Substring 2) :: pairs rest
             | [] -> []
             | other -> failwith $"the documented session is not request/answer pairs at {other.Head}"

         pairs lines)

/// Pipes the documented session through a driver, its directories in a fresh folder, and holds
/// each answer to the one shown: the same ok and error kind, the same read (numbers as integers
/// or strings); hello's name and supports and a failure's message are the driver's own.
let private answersDocumentedSession (command: Command) =
    use dir = new TempDir()

    let client =
        match Client.Start(command, TimeSpan.FromSeconds 20.0) with
        | Ok c -> c
        | Error breach -> failtest (Breach.describe breach)

    use _ = client
    let session = documentedSession.Value
    Expect.isGreaterThan session.Length 10 "the session is found in the document"

    for request, shown in session do
        let request = request.Replace("\"/tmp/c/", $"\"{dir.Root}/")
        use shownDoc = Text.Json.JsonDocument.Parse shown
        let shown = shownDoc.RootElement

        let op =
            request
            |> Text.Json.JsonDocument.Parse
            |> (fun d -> d.RootElement.GetProperty("op").GetString())

        match client.Request request, shown.GetProperty("ok").GetBoolean() with
        | Error breach, _ -> failtest (Breach.describe breach)
        | Ok(Refused(kind, _)), false ->
            Expect.equal kind (shown.GetProperty("error").GetString()) $"the failure's kind for {request}"
        | Ok(Refused(kind, message)), true -> failtest $"{request} was refused: {kind}: {message}"
        | Ok(Answered _), false -> failtest $"{request} was answered ok, the document shows a failure"
        | Ok(Answered answer), true when op = "hello" ->
            Expect.equal (answer.GetProperty("name").ValueKind) Text.Json.JsonValueKind.String "hello's name"
            Expect.equal (answer.GetProperty("supports").ValueKind) Text.Json.JsonValueKind.Array "hello's supports"
        | Ok(Answered answer), true ->
            match shown.TryGetProperty "read" with
            | true, shownRead ->
                let at = Snapshot.zero

                Expect.equal
                    (Driver.parseRead at (answer.GetProperty "read"))
                    (Driver.parseRead at shownRead)
                    $"the read for {request}"
            | _ -> ()

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

            test "the engine's driver answers the documented session as shown" { answersDocumentedSession engine }

            test "naive.py answers the documented session as shown" { answersDocumentedSession (python "naive.py" []) }

            test "naive.py (correct) passes Oracle.check through the protocol" { passes (python "naive.py" []) 30 }

            test "naive.py with its bug passes without power cuts (crash-test is what catches it)" {
                passes (python "naive.py" [ "--bug"; "no-fsync-on-term-change" ]) 10
            }

            test "the FasterLog driver passes Oracle.check through the protocol" {
                passes (interopDriver "faster" "faster-driver.dll") 30
            }

            test "the DotNext WriteAheadLog driver passes Oracle.check through the protocol" {
                passes (interopDriver "dotnext" "dotnext-driver.dll") 30
            }

            test "numbers written as decimal strings are accepted" {
                passes (python "strings.py" [ "dotnet"; Path.Combine(testDirectory, "wal.dll"); "driver" ]) 10
            }

            test "a driver that reads what was not written is falsified, with a trace" {
                // The engine's driver behind a filter that makes every read's commit index 0 (a string or a number).
                let filter =
                    "import re,subprocess,sys\n"
                    + "p=subprocess.Popen(sys.argv[1:],stdin=subprocess.PIPE,stdout=subprocess.PIPE,text=True)\n"
                    + "for l in sys.stdin:\n"
                    + " p.stdin.write(l);p.stdin.flush()\n"
                    + " sys.stdout.write(re.sub(r'\"commit\":\"?\\d+\"?','\"commit\":0',p.stdout.readline()));sys.stdout.flush()\n"

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
                        Install = false
                        Release = false
                        Sync = false
                        BareAfterReopen = false
                    }

                for seed in 1..50 do
                    let steps =
                        (Gen.sampleWithSeed (Rnd(uint64 seed, 1UL)) 40 1 (Scenarios.stepsSupporting none false))[0]

                    steps
                    |> List.fold
                        (fun (last, reopened) step ->
                            match step with
                            | Do(Save(state, (first :: _ as entries))) ->
                                Expect.equal first.Index (last + 1UL) "no overwrite"

                                if reopened then
                                    Expect.notEqual state HardState.empty "no bare-entry Save right after a reopen"

                                (List.last entries).Index, reopened && state = HardState.empty
                            | Do(Save(state, [])) -> last, reopened && state = HardState.empty
                            | Do(SaveSnapshot _ | Sync | ReleaseLockTo _) -> failtest $"asked for {step}"
                            | Do(Open at) ->
                                Expect.equal at Snapshot.zero "no open at a snapshot"
                                last, true
                            | _ -> last, reopened)
                        (0UL, false)
                    |> ignore
            }

            test "the generators make bare-entry Saves right after a reopen for a driver that lists them" {
                let bareAfterReopen (steps: Step list) =
                    steps
                    |> List.fold
                        (fun (found, reopened) step ->
                            match step with
                            | Do(Save(state, _ :: _)) when reopened && state = HardState.empty -> true, true
                            | Do(Save(state, _)) -> found, reopened && state = HardState.empty
                            | Do(Open _) -> found, true
                            | _ -> found, reopened)
                        (false, false)
                    |> fst

                let found =
                    [ 1..200 ]
                    |> List.exists (fun seed ->
                        (Gen.sampleWithSeed
                            (Rnd(uint64 seed, 1UL))
                            40
                            1
                            (Scenarios.stepsSupporting Scenarios.Supports.all true))[0]
                        |> bareAfterReopen)

                Expect.isTrue found "some sequence saves bare entries right after a reopen"
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

/// A follower installs its leader's snapshot past its last entry (the `install` of the protocol's
/// supports), is restarted at it, and a Save of its hard state cuts a segment (the metadata is
/// larger than 4 KiB segments, so every Save cuts); then it is restarted at the snapshot again.
let private installThenCut: Step list =
    let state term vote commit : Wal.Model.HardState =
        {
            Term = term
            Vote = vote
            Commit = commit
        }

    let snapshot: Wal.Model.Snapshot = { Index = 10UL; Term = 1UL }

    [
        Do(Create(Array.create 4500 7uy))
        Do(
            Save(
                state 1UL 1UL 1UL,
                [
                    {
                        Term = 1UL
                        Index = 1UL
                        Kind = 0
                        Data = "a"B
                    }
                ]
            )
        )
        Do(SaveSnapshot snapshot)
        Do(Save(state 1UL 1UL 10UL, []))
        Do Close
        Do(Open snapshot)
        Do(Save(state 2UL 0UL 10UL, []))
        Do Close
        Do(Open snapshot)
    ]

/// Oracle.judge of `steps` through the driver `command`, and the segments it left.
let private judged (command: Command) (steps: Step list) =
    use dir = new TempDir()
    use driver = new DriverAdapter(command, dir.Root, TimeSpan.FromSeconds 20.0)
    driver.Hello |> ignore
    let verdict = Oracle.judge DurabilityRule.RaftContract driver.Adapter steps

    let segments =
        Directory.GetFiles(dir.Root, "*.wal", SearchOption.AllDirectories)
        |> Array.map Path.GetFileName
        |> Array.sort
        |> List.ofArray

    verdict, segments

/// etcd 3.4's own wal package behind the protocol (`etcd-peer driver`): the Interop category, as
/// it runs etcd's code through the peer.
let interop =
    testList
        "EtcdDriverTests"
        [
            test "etcd's driver passes Oracle.check through the protocol, by etcd's exact rule" {
                passesWith
                    (etcd None)
                    { config 30 with
                        Rule = DurabilityRule.EtcdExact
                    }
            }

            test "etcd's driver passes Oracle.check through the protocol, by raft's contract" { passes (etcd None) 30 }

            test "etcd's driver with 4 KiB segments passes Oracle.check (its cuts and segment names)" {
                passes (etcd (Some 4096L)) 30
            }

            test "etcd's driver answers the documented session as shown" { answersDocumentedSession (etcd None) }

            // etcd's ReadAll leaves the writer's last index at the last entry read, below the
            // snapshot, so its cut names the new segment 3-1 and the next open at the snapshot
            // starts there, past the snapshot record. Opened for writing, etcd 3.4 drops the
            // ErrSnapshotNotFound that follows (newFileEncoder overwrites it) and reads what the
            // model allows; opened for reading, it fails (docs/format.md#segment-names-after-a-snapshot).
            test "after an install, a reopen and a cut, etcd names the segment below the snapshot and still reads" {
                let etcdVerdict, etcdSegments = judged (etcd (Some 4096L)) installThenCut
                Expect.isNone etcdVerdict "etcd 3.4, opened for writing, reads what the model allows"
                Expect.contains etcdSegments "0000000000000003-0000000000000001.wal" "etcd's cut after the reopen"

                // The engine's names after the snapshot are CrashExamples' (its driver cuts at 64 MB).
                Expect.isNone (fst (judged engine installThenCut)) "the engine reads what the model allows"
            }

            test "a record etcd panics on is a read error, and etcd's driver answers on" {
                use dir = new TempDir()

                let client =
                    match Client.Start(etcd None, TimeSpan.FromSeconds 20.0) with
                    | Ok c -> c
                    | Error breach -> failtest (Breach.describe breach)

                use _ = client
                let log = Path.Combine(dir.Root, "log")

                let answered request =
                    match client.Request request with
                    | Ok(Answered answer) -> answer
                    | Ok(Refused(kind, message)) -> failtest $"{request} was refused: {kind}: {message}"
                    | Error breach -> failtest (Breach.describe breach)

                answered $"{{\"op\":\"create\",\"dir\":\"{log}\",\"metadata\":\"bm9kZS0x\"}}"
                |> ignore

                answered "{\"op\":\"close\"}" |> ignore
                // The metadata record's type byte (after the crc record's frame, the length, the
                // tag): made an entry's, which the CRC does not cover. "node-1" is no protobuf, so
                // etcd's mustUnmarshalEntry panics on it.
                let segment = Directory.GetFiles(log, "*.wal") |> Array.exactlyOne
                let bytes = File.ReadAllBytes segment
                Expect.equal bytes[25] 1uy "the metadata record's type"
                bytes[25] <- 2uy
                File.WriteAllBytes(segment, bytes)

                let read =
                    answered $"{{\"op\":\"open\",\"dir\":\"{log}\",\"snapIndex\":0,\"snapTerm\":0}}"

                match Driver.parseRead Snapshot.zero (read.GetProperty "read") with
                | Ok dump -> Expect.equal dump.Error (Some "CorruptRecord") "etcd's panic, as a read error"
                | Error reason -> failtest reason

                answered "{\"op\":\"hello\"}" |> ignore
            }
        ]
