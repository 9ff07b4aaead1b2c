/// The test program: every suite as one Expecto tree, run with Expecto's command line
/// (`--filter`, `--filter-test-list`, `--filter-test-case`, `--list-tests`, `--nunit-summary`, ...).
module Wal.Properties.Program

open System
open Expecto

/// Categories a run can leave out with `--exclude-category NAME`: Interop runs etcd's own code
/// through the peer (interop/etcd/peer), which machines without Go cannot build.
let categories = [ "Interop", [ InteropProperties.tests ] ]

/// Every suite, one list per subject. The CLI tests swap Console.Out, so they run alone.
let suites =
    [
        GoldenTests.tests
        CodecProperties.tests
        ReadErrorTests.tests
        TornTailErrorTests.tests
        UsageErrorTests.tests
        IoErrorTests.tests
        DirectoryQueryTests.tests
        RealDiskTests.tests
        LockTests.tests
        WriterProperties.tests
        ModelProperties.tests
        CrashProperties.tests
        InteropProperties.tests
        CorpusTests.tests
        testSequenced CliTests.tests
        OracleTests.tests
        SegmentsProperties.tests
    ]

/// Splits this program's own options (`--exclude-category NAME`) from Expecto's.
let rec private ownOptions (args: string list) =
    match args with
    | "--exclude-category" :: name :: rest ->
        let excluded, expecto = ownOptions rest
        name :: excluded, expecto
    | arg :: rest ->
        let excluded, expecto = ownOptions rest
        excluded, arg :: expecto
    | [] -> [], []

[<EntryPoint>]
let main argv =
    let excluded, expectoArgs = ownOptions (List.ofArray argv)

    for name in excluded do
        if not (categories |> List.exists (fst >> (=) name)) then
            failwith $"unknown category {name}; the categories are {categories |> List.map fst}"

    let left =
        categories
        |> List.filter (fst >> fun name -> List.contains name excluded)
        |> List.collect snd

    let tests =
        suites
        |> List.filter (fun suite -> not (left |> List.exists (fun l -> obj.ReferenceEquals(l, suite))))

    Tests.runTestsWithCLIArgs [ CLIArguments.No_Spinner ] (Array.ofList expectoArgs) (testList "Wal" tests)
