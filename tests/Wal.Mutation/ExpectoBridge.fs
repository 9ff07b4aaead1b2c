/// Every Expecto test of Wal.Properties as an NUnit case, for Stryker.NET (tests/Wal.Mutation
/// /stryker-config.json; `dotnet fsi build.fsx stryker`). Stryker finds tests through VSTest, and
/// NUnit's adapter is served where an Expecto one is not. Each case runs one Expecto test, by its
/// full name, through Expecto itself, so a property keeps its generator, shrinking and config.
module Wal.Mutation.ExpectoBridge

open Expecto
open NUnit.Framework

/// Lists left out of mutation runs: Interop needs the etcd peer's Go build; the others run
/// external processes (strace, drivers, git) or explore for minutes (the explorer has its own
/// column in classic-bugs), which would make each mutant's run too slow to repeat hundreds of times.
let private leftOut =
    set
        [
            "CrashTestTests"
            "ClassicBugPatchesTests"
            "StraceReplay"
            "DriverTests"
            "OracleExploreTests"
        ]

/// WAL_MUTATION_LISTS narrows a run to some lists (comma-separated, as "CodecProperties,ReadErrorTests"),
/// so a run over one part of Wal.Core can be judged by the suites that exercise it, at a fraction
/// of the cost; a mutant only the other lists would kill counts as a survivor, so such a score errs low.
let private chosen =
    match System.Environment.GetEnvironmentVariable "WAL_MUTATION_LISTS" with
    | null
    | "" -> None
    | lists ->
        Some(
            set (
                lists.Split(
                    ',',
                    System.StringSplitOptions.RemoveEmptyEntries
                    ||| System.StringSplitOptions.TrimEntries
                )
            )
        )

let private tests =
    Wal.Properties.Program.suites
    |> List.filter (fun (category, _) -> category.IsNone)
    |> List.map snd
    |> testList "Wal"
    |> Test.filter "." (fun path -> not (List.exists (fun (p: string) -> leftOut.Contains p) path))

let private names =
    tests
    |> Test.toTestCodeList
    |> Seq.map (fun t -> String.concat "." t.name)
    |> Seq.filter (fun name ->
        match chosen with
        | None -> true
        | Some lists -> lists |> Seq.exists (fun list -> name.StartsWith $"Wal.{list}."))
    |> Array.ofSeq

/// The cases: one per Expecto test, named by its full Expecto name.
let cases () =
    names |> Array.map (fun name -> TestCaseData(name).SetName(name))

/// Properties run at most this many cases under mutation (Support.fsCheck reads it): a mutant that
/// survives costs a run of every test that covers it, and the suites' 100-500 cases per property
/// would make a run of a thousand mutants take most of a day on two cores. A mutant that the full
/// suites would kill and 30 cases do not counts as a survivor, so the score errs low.
[<Literal>]
let private PropertyCases = "30"

/// Runs one Expecto test by its full name; it fails when Expecto reports anything but success.
[<TestCaseSource(nameof cases)>]
let expecto (name: string) =
    if isNull (System.Environment.GetEnvironmentVariable "WAL_PROPERTY_TESTS") then
        System.Environment.SetEnvironmentVariable("WAL_PROPERTY_TESTS", PropertyCases)

    let one = tests |> Test.filter "." (fun path -> String.concat "." path = name)

    let code =
        runTestsWithCLIArgs [ CLIArguments.No_Spinner; CLIArguments.Parallel_Workers 1 ] [||] one

    Assert.That(code, Is.EqualTo 0, $"Expecto: {name}")
