/// The test program: every suite as one Expecto tree, run with Expecto's command line
/// (`--filter`, `--filter-test-list`, `--filter-test-case`, `--list-tests`, `--sequenced`,
/// `--nunit-summary`, ...) and one option of its own, `--exclude-category NAME`.
module Wal.Properties.Program

open System
open Expecto
open Expecto.Impl

/// A category names tests a run can leave out. Interop runs etcd's own code through the peer
/// (interop/etcd/peer), which machines without Go cannot build.
type Category = | Interop

/// Every suite, one list per subject, with its category if it has one. Expecto runs them in
/// parallel, then the sequenced ones one at a time. The CLI tests swap Console.Out. The Interop
/// tests start the etcd peer, and a child process holds copies of the parent's descriptors from
/// fork to exec, with them the OFD locks of any log then open on the real disk: another test
/// reopening its log at that moment would find it locked.
let suites =
    [
        None, GoldenTests.tests
        None, CodecProperties.tests
        None, ReadErrorTests.tests
        None, TornTailErrorTests.tests
        None, UsageErrorTests.tests
        None, IoErrorTests.tests
        None, DirectoryQueryTests.tests
        None, RealDiskTests.tests
        None, LockTests.tests
        None, WriterProperties.tests
        None, ModelProperties.tests
        None, DurabilityProperties.tests
        None, InvariantProperties.tests
        None, CrashProperties.tests
        None, CrashExamples.tests
        None, DiskProperties.tests
        Some Interop, testSequenced InteropProperties.tests
        None, SnapTests.tests
        Some Interop, testSequenced SnapInteropTests.tests
        None, CorpusTests.tests
        None, testSequenced CliTests.tests
        None, testSequenced CliDumpTests.tests
        None, EtcdPayloadTests.tests
        None, testSequenced CliDamageTests.tests
        None, testSequenced HostileDirectoryTests.tests
        None, OracleTests.tests
        None, DriverTests.tests
        Some Interop, testSequenced DriverTests.interop
        None, OracleExploreTests.tests
        None, SegmentsProperties.tests
        None, StraceReplayTests.tests
        None, ClassicBugPatchesTests.tests
        None, testSequenced CrashTestTests.tests
        None, RaftLogProperties.tests
        None, RaftLogMappedTests.tests
        None, testSequenced ChainCheckTests.tests
        None, RaftLogSplitOpenTests.tests
        None, testSequenced ZeroFillTests.tests
        None, testSequenced ZeroAheadTests.tests
        None, AsyncTests.tests
        None, testSequenced MetricsTests.tests
        None, FSharpSurfaceTests.tests
        None, testSequenced BoundedToolsTests.tests
        None, MessageDecodingTests.tests
        Some Interop, testSequenced MessageDecodingTests.interop
        None, EntryStoreProperties.tests
        None, RaftInvariantsTests.tests
        None, LifecycleTests.tests
    ]

/// Splits this program's own options (`--exclude-category NAME`) from Expecto's.
let rec private ownOptions (args: string list) =
    match args with
    | "--exclude-category" :: name :: rest ->
        let excluded, expecto = ownOptions rest

        match name with
        | "Interop" -> Interop :: excluded, expecto
        | other -> failwith $"unknown category {other}; the categories are: Interop"
    | arg :: rest ->
        let excluded, expecto = ownOptions rest
        excluded, arg :: expecto
    | [] -> [], []

/// Runs the tests with Expecto's command line; a filter that selects no test fails the run
/// (exit code 2), as a run in which no test ran must.
let private runAll (args: string[]) (tests: Test) =
    let selected =
        match ExpectoConfig.fillFromArgs defaultConfig args with
        | ArgsRun config -> Some(config.filter tests |> Test.toTestCodeList |> Seq.length)
        | _ -> None

    match selected with
    | Some 0 ->
        eprintfn "Wal.Properties: no test matches the filter"
        2
    | _ -> runTestsWithCLIArgs [ CLIArguments.No_Spinner ] args tests

[<EntryPoint>]
let main argv =
    let excluded, expectoArgs = ownOptions (List.ofArray argv)

    let tests =
        suites
        |> List.filter (fun (category, _) ->
            match category with
            | Some c -> not (List.contains c excluded)
            | None -> true)
        |> List.map snd

    runAll (Array.ofList expectoArgs) (testList "Wal" tests)
