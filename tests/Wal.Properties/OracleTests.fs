/// The oracle (Wal.Oracle.Oracle) and the trace language (Wal.Oracle.Trace): the engine passes
/// through its adapter, a naive WAL that loses acknowledged data is caught with a shrunk trace,
/// and traces print and parse back, while junk gets an error, never an exception.
module Wal.Properties.OracleTests

open System
open System.Text
open Expecto
open FsCheck
open FsCheck.FSharp
open Wal.Model
open Wal.Oracle
open Wal.Oracle.Trace
open Wal.Properties.Support

/// A deliberately naive WAL: records stay in a buffer until every third Save (or a sync, a
/// snapshot, a close), whatever etcd's MustSync says; a power cut loses the buffer.
let naive () : Oracle.Adapter =
    let mutable disk: Record list option = None
    let mutable buffer: Record list = []
    let mutable saves = 0

    let flush () =
        disk <- disk |> Option.map (fun d -> d @ buffer)
        buffer <- []

    {
        Name = "a naive WAL"
        Reset =
            fun () ->
                disk <- None
                buffer <- []
        Create = fun m -> disk <- Some [ Metadata m; SnapshotRecord Snapshot.zero ]
        Save =
            fun state entries ->
                buffer <- buffer @ (entries |> List.map EntryRecord) @ [ State state ]
                saves <- saves + 1

                if saves % 3 = 0 then
                    flush ()
        SaveSnapshot =
            fun s ->
                buffer <- buffer @ [ SnapshotRecord s ]
                flush ()
        Sync = flush
        ReleaseLockTo = ignore
        Close = flush
        OpenAndReadAll =
            fun at ->
                match disk with
                | None -> NoLog
                | Some records ->
                    let mutable state = HardState.empty
                    let mutable entries: Entry list = []
                    let mutable found = false

                    for r in records do
                        match r with
                        | EntryRecord e when e.Index > at.Index ->
                            entries <- (entries |> List.filter (fun x -> x.Index < e.Index)) @ [ e ]
                        | State s when not (HardState.isEmpty s) -> state <- s
                        | SnapshotRecord s when s = at -> found <- true
                        | _ -> ()

                    let metadata =
                        records
                        |> List.pick (function
                            | Metadata m -> Some m
                            | _ -> None)

                    let contents =
                        {
                            Metadata = metadata
                            State = state
                            Entries = entries
                        }

                    if found then Read contents else NotFound contents
        PowerCut = Some(fun _ -> buffer <- [])
    }

let ``the engine on the simulated disk passes the oracle, power cuts included`` () =
    match
        Oracle.check
            (Wal.Simulation.EngineAdapter.simulated 512L)
            { Oracle.Config.etcdExact with
                Tests = 300
            }
    with
    | Oracle.Passed(_, tests) -> Expect.equal tests 300 ""
    | failure -> failtest (string failure)

let ``the engine on the real disk passes the oracle`` () =
    use tmp = new TempDir()

    match
        Oracle.check
            (Wal.Simulation.EngineAdapter.onDisk tmp.Root 1024L)
            { Oracle.Config.etcdExact with
                Tests = 40
            }
    with
    | Oracle.Passed(_, tests) -> Expect.equal tests 40 ""
    | failure -> failtest (string failure)

let ``the oracle catches a WAL that loses acknowledged saves, with a shrunk trace that replays`` () =
    match Oracle.check (naive ()) Oracle.Config.standard with
    | Oracle.Passed _ -> failtest "the naive WAL passed"
    | Oracle.Falsified(_, c) ->
        Expect.isLessThanOrEqual c.Shrunk c.Original ""
        Expect.stringContains c.Trace "crash" ""
        // The read is explained field by field against the closest allowed one.
        Expect.stringContains c.Reason "against the closest allowed read" c.Reason
        // The counterexample is a trace: it parses, and the model rejects it at its last line.
        match Trace.parse c.Trace with
        | Error e -> failtest $"the counterexample does not parse: {e}\n{c.Trace}"
        | Ok lines ->
            match Trace.check lines with
            | Violated(Disallowed(line, _, _)) -> Expect.equal line ((List.last lines).Number) ""
            | other -> failtest $"the counterexample checks as {other}"

            // The naive WAL loses saves whatever they hold: every payload shrinks to (almost) nothing.
            for line in lines do
                match line.Step with
                | Do(Create m) -> Expect.isLessThanOrEqual m.Length 1 $"shrunk metadata\n{c.Trace}"
                | Do(Save(_, entries)) ->
                    // (One byte may stay: which sectors a crash image keeps depends on the sizes.)
                    for e in entries do
                        Expect.isLessThanOrEqual e.Data.Length 1 $"shrunk entry data\n{c.Trace}"
                | _ -> ()
        // Its seed reruns it.
        match
            Oracle.check
                (naive ())
                { Oracle.Config.standard with
                    Seed = c.Seed
                    Tests = 1
                }
        with
        | Oracle.Falsified(_, again) -> Expect.equal again.Trace c.Trace ""
        | Oracle.Passed _ -> failtest "the seed did not replay the failure"

/// Traces with every kind of step and observation, from the model's own generators.
let private traces =
    let observation =
        Gen.oneof
            [
                Scenarios.payload
                |> Gen.map (fun m ->
                    Saw(
                        Read
                            {
                                Metadata = m
                                State = { Term = 3UL; Vote = 1UL; Commit = 2UL }
                                Entries = []
                            }
                    ))
                Gen.constant (Saw NoLog)
                Gen.elements
                    [
                        Saw(Failed SnapshotMismatch)
                        SawError "CrcMismatch"
                        Saw(Failed SliceOutOfRange)
                    ]
            ]

    gen {
        let! generated = Scenarios.steps true
        let steps = generated |> List.filter Trace.holds
        let! observations = Gen.listOfLength steps.Length observation
        let! powerImages = Gen.listOfLength steps.Length (Gen.choose (0, 1000))

        return
            List.zip3 steps observations powerImages
            |> List.map (fun (step, o, image) ->
                match step with
                | Do(Open _) -> step, Some o
                | Happen(HarnessEvent.PowerLoss _) when image % 2 = 0 -> Happen(HarnessEvent.PowerLoss None), None
                | s -> s, None)
    }

type Traces =
    static member Steps() = Arb.fromGen traces

let ``a printed trace parses back to the same steps`` (steps: (Step * Observation option) list) =
    let lines =
        steps
        |> List.mapi (fun i (step, observed) ->
            {
                Number = i + 1
                Step = step
                Observed = observed
            })

    match Trace.parse (Trace.printLines lines) with
    | Ok parsed -> parsed |> List.map (fun l -> l.Step, l.Observed) = steps
    | Error _ -> false

let ``junk is a parse error with a line and column, never an exception`` (junk: byte[]) (prefix: bool) =
    let text =
        (if prefix then "create \"a\"\nsave 1/1/0 [" else "")
        + Encoding.Latin1.GetString junk

    match Trace.parse text with
    | Ok _ -> true
    | Error e ->
        e.Line >= 1L
        && e.Column >= 1L
        && e.Message.Length > 0
        && e.Message |> Seq.forall (fun c -> c >= ' ' && c < '\x7f')

let ``untrusted numbers and lines are bounded, with clear errors`` () =
    let check (text: string) (expected: string) =
        match Trace.parse text with
        | Ok _ -> failtest $"parsed: {text.Substring(0, min 40 text.Length)}"
        | Error e -> Expect.stringContains e.Message expected ""

    check "create \"a\"\nsave 99999999999999999999999/1/0\n" "a number below 2^64"
    check "create \"a\"\ncrash 99999999999\n" "a number below 2^31"
    check ("create \"" + String('x', Trace.Limits.lineChars + 1) + "\"") "longer than"
    check "create \"a\"\nopen 0/0 -> sideways\n" "an observation"
    check "create 0xabc\n" "an even number of hex digits"

let ``a trace of acknowledged saves read back after a crash is checked exactly`` () =
    let trace =
        """# a synced save survives a crash; an unsynced commit-only save may not
create "node-1"
save 1/1/0 [1/1 "a", 1/2 "b"]
save 1/1/2
crash
open 0/0 -> read "node-1" 1/1/0 [1/1 "a", 1/2 "b"]
save 1/1/2 [1/3 "c"]
close
open 0/0 -> read "node-1" 1/1/2 [1/1 "a", 1/2 "b"]
"""

    match Trace.parse trace with
    | Error e -> failtest (string e)
    | Ok lines ->
        match Trace.check lines with
        | Violated(Disallowed(line, _, allowed)) ->
            Expect.equal line 9 ""

            Expect.equal
                (allowed |> List.map (fun o -> printObservation (Saw o)))
                [ "read \"node-1\" 1/1/2 [1/1 \"a\", 1/2 \"b\", 1/3 \"c\"]" ]
                ""
        | other -> failtest $"{other}"

/// This file's tests.
let tests =
    testList
        "OracleTests"
        [
            testCase
                "the engine on the simulated disk passes the oracle, power cuts included"
                ``the engine on the simulated disk passes the oracle, power cuts included``
            testCase "the engine on the real disk passes the oracle" ``the engine on the real disk passes the oracle``
            testCase
                "the oracle catches a WAL that loses acknowledged saves, with a shrunk trace that replays"
                ``the oracle catches a WAL that loses acknowledged saves, with a shrunk trace that replays``
            testPropertyWithConfig
                (fsCheck 200 [ typeof<Traces> ])
                "a printed trace parses back to the same steps"
                ``a printed trace parses back to the same steps``
            testPropertyWithConfig
                (fsCheck 500 [])
                "junk is a parse error with a line and column, never an exception"
                ``junk is a parse error with a line and column, never an exception``
            testCase
                "untrusted numbers and lines are bounded, with clear errors"
                ``untrusted numbers and lines are bounded, with clear errors``
            testCase
                "a trace of acknowledged saves read back after a crash is checked exactly"
                ``a trace of acknowledged saves read back after a crash is checked exactly``
        ]
