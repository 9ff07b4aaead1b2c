/// WALs written by etcd 3.4's own wal package (tests/Wal.Properties/corpus/etcd-3.4, made by
/// `dotnet fsi build.fsx corpus` from interop/etcd/corpus/*.json) with etcd's verdicts on them:
/// the engine must give the same ones, on a machine without Go.
module Wal.Properties.CorpusTests

open System
open System.IO
open Expecto
open Wal
open Wal.Oracle
open Wal.Simulation
open Wal.Properties.Support

let private corpus = Path.Combine(testDirectory, "corpus", "etcd-3.4")

let cases () =
    Directory.GetDirectories corpus |> Array.map Path.GetFileName |> Array.sort

let private copyWal (case: string) (root: string) (name: string) =
    let target = Path.Combine(root, name)
    Directory.CreateDirectory target |> ignore

    for f in Directory.GetFiles(Path.Combine(corpus, case, "wal")) do
        File.Copy(f, Path.Combine(target, Path.GetFileName f))

    target

let ``the corpus holds every case etcd wrote, each with its verdicts`` () =
    let cases = cases ()
    Expect.isGreaterThanOrEqual cases.Length 6 ""

    for case in cases do
        Expect.isTrue (File.Exists(Path.Combine(corpus, case, "expected.txt"))) case
        Expect.isNonEmpty (Directory.GetFiles(Path.Combine(corpus, case, "wal"), "*.wal")) case

/// ReadAll as etcd 3.4 does it: without raft's invariants.
let private etcdRead dir snapshot write =
    EngineReadAll.readWith EngineReadAll.lenient dir snapshot write

let ``the engine gives etcd's verdicts on an etcd-written WAL`` (case: string) =
    use tmp = new TempDir()
    let mutable repaired: string option = None
    let lines = File.ReadAllLines(Path.Combine(corpus, case, "expected.txt"))

    for i, line in Array.indexed lines do
        let parts = line.Split(' ', 3)
        let verb, at, expected = parts[0], parts[1], parts[2]
        let copy () = copyWal case tmp.Root $"{verb}-{i}"

        let snapshot () =
            match at.Split(':') with
            | [| index; term |] -> Snapshot(UInt64.Parse index, UInt64.Parse term)
            | _ -> failwith $"{case}: bad snapshot {at}"

        let actual =
            match verb with
            | "read" -> etcdRead (copy ()) (snapshot ()) false |> ReadAllJson.render
            | "open" ->
                etcdRead (copy ()) (snapshot ()) true
                |> EtcdPeer.asEtcdOpenReports
                |> ReadAllJson.render
            | "repair" ->
                let dir = copy ()
                repaired <- Some dir

                let ok =
                    try
                        WalDirectory.Repair dir |> ignore
                        true
                    with :? WalException ->
                        false

                $"""{{"repaired":{(if ok then "true" else "false")}}}"""
            | "repaired-read" ->
                let dir =
                    repaired
                    |> Option.defaultWith (fun () -> failwith "repaired-read before repair")

                etcdRead dir (snapshot ()) false |> ReadAllJson.render
            | other -> failwith $"{case}: unknown verdict {other}"

        Expect.equal actual expected $"{case}, line {i + 1}: {verb} {at}"

/// Two corpus logs hold what raft never writes (etcd's peer wrote them as scripted): with raft's
/// invariants on, the engine reports those as CorruptRecord at the offending record, and reads
/// every other case as etcd does.
let ``by default, the corpus logs raft would never write are CorruptRecord, naming the invariant`` () =
    let strictVerdict (case: string) =
        use tmp = new TempDir()
        let dir = copyWal case tmp.Root "strict"

        try
            use wal = WriteAheadLog.OpenForRead(dir, Snapshot.Zero)
            wal.ReadAll() |> ignore
            None
        with :? WalException as e ->
            Some(e.Kind, e.Message)

    let lenientVerdict (case: string) =
        use tmp = new TempDir()
        (etcdRead (copyWal case tmp.Root "lenient") Snapshot.Zero false).Error

    for case in cases () do
        match case, strictVerdict case with
        | "entry-kinds", Some(WalErrorKind.CorruptRecord, message) ->
            Expect.stringContains message "changes the vote from 1 to 2 within term 2" case
        | "saves", Some(WalErrorKind.CorruptRecord, message) ->
            Expect.stringContains message "commits 11, beyond the last index 10" case
        | ("entry-kinds" | "saves"), other -> failtest $"{case}: {other}"
        | _, verdict -> Expect.equal (verdict |> Option.map (fst >> string)) (lenientVerdict case) case

/// This file's tests.
let tests =
    testList
        "CorpusTests"
        [
            testCase
                "the corpus holds every case etcd wrote, each with its verdicts"
                ``the corpus holds every case etcd wrote, each with its verdicts``
            testCase
                "by default, the corpus logs raft would never write are CorruptRecord, naming the invariant"
                ``by default, the corpus logs raft would never write are CorruptRecord, naming the invariant``
            yield!
                [
                    for case in cases () ->
                        testCase $"the engine gives etcd's verdicts on an etcd-written WAL({case})" (fun () ->
                            ``the engine gives etcd's verdicts on an etcd-written WAL`` case)
                ]
        ]
