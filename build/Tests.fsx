/// Every test: the Expecto suites of tests/Wal.Properties, then the examples and the crash-test
/// table (build/CrashTest.fsx, each driver counted as one test), closing on one
/// `tests: N passed, N failed` line.
module Tests

#load "Shell.fsx"
#load "Etcd.fsx"
#load "Examples.fsx"
#load "Debian.fsx"
#load "CrashTest.fsx"

open System
open System.IO
open System.Xml.Linq
open Shell

/// The test program, as `dotnet build` leaves it.
let testProgram =
    Path.Combine("tests", "Wal.Properties", "bin", "Release", "net10.0", "Wal.Properties.dll")

let resultsDirectory = Path.Combine("artifacts", "test-results")

type Counts =
    {
        Passed: int
        Failed: int
        Skipped: int
    }

    static member (+)(a, b) =
        {
            Passed = a.Passed + b.Passed
            Failed = a.Failed + b.Failed
            Skipped = a.Skipped + b.Skipped
        }

    static member Zero = { Passed = 0; Failed = 0; Skipped = 0 }

/// The counts of the `<test-results .../>` element Expecto's `--nunit-summary` writes.
/// Failure messages may hold the terminal's colour codes, raw ESC bytes that XML 1.0 forbids and
/// no XmlReader setting lets through, so control characters are blanked before parsing: only the
/// counts on the root element are read.
let summaryCounts (file: string) =
    let text =
        System.Text.RegularExpressions.Regex.Replace(File.ReadAllText file, "[\\x00-\\x08\\x0B\\x0C\\x0E-\\x1F]", " ")

    let results = XDocument.Parse(text).Root

    let count name =
        match results.Attribute(XName.Get name) with
        | null -> 0
        | attribute -> int attribute.Value

    let failed = count "failures" + count "errors"
    let skipped = count "ignored" + count "not-run" + count "skipped"

    {
        Passed = count "total" - failed - skipped
        Failed = failed
        Skipped = skipped
    }

/// Runs the test program with these arguments and an NUnit-style summary file; returns its exit
/// code and the counts (zero when it wrote no summary).
let unitTests (args: string list) =
    if Directory.Exists resultsDirectory then
        Directory.Delete(resultsDirectory, true)

    Directory.CreateDirectory resultsDirectory |> ignore
    let summary = Path.GetFullPath(Path.Combine(resultsDirectory, "Wal.Properties.xml"))
    let code = exec "dotnet" ([ testProgram; "--nunit-summary"; summary ] @ args)

    let counts =
        if File.Exists summary then
            summaryCounts summary
        else
            Counts.Zero

    code, counts

/// Every example, each counted as one test.
let exampleTests () =
    let codes = Examples.runExamples () |> List.map snd
    let failed = codes |> List.filter ((<>) 0) |> List.length

    let counts =
        { Counts.Zero with
            Passed = codes.Length - failed
            Failed = failed
        }

    if not codes.IsEmpty then
        printfn $"examples: {counts.Passed} passed, {counts.Failed} failed"

    counts

/// WAL_TEST_FILTER: Expecto's filter options, e.g. `--filter-test-list ErrorTests`, as one string.
let testFilter () =
    match Environment.GetEnvironmentVariable "WAL_TEST_FILTER" with
    | null
    | "" -> None
    | filter -> Some(words filter)

/// The `test` target after the build: the unit tests (narrowed by WAL_TEST_FILTER; the Interop
/// category left out by WAL_ETCD=skip), then the examples unless a filter is set; the last line
/// printed is the `tests: ...` summary. Fails on any failure, or when no unit test ran.
let test () =
    // The Interop tests run etcd's own code; WAL_ETCD=skip leaves them out (and says so), for
    // machines that cannot install Go and etcd's source. CI never sets it.
    let skipEtcd = Environment.GetEnvironmentVariable "WAL_ETCD" = "skip"

    if skipEtcd then
        printfn "WAL_ETCD=skip: the Interop tests (etcd's own code) are not run"
    else
        match Etcd.buildPeer () with
        | Ok path -> Environment.SetEnvironmentVariable("WAL_ETCD_PEER", path)
        | Error reason -> fail $"{reason}; the Interop tests need the etcd peer (set WAL_ETCD=skip to leave them out)"

    // The driver tests run examples/drivers/*.py; the replay tests record a live workload with strace.
    match
        Debian.ensure
            [
                if not (onPath "python3") then
                    "python3"
                if not (onPath "strace") then
                    "strace"
            ]
    with
    | Ok() -> ()
    | Error reason -> fail $"{reason}; the driver and strace replay tests need them"

    let filter = testFilter ()

    let args =
        (if skipEtcd then [ "--exclude-category"; "Interop" ] else [])
        @ defaultArg filter []

    let testCode, units = unitTests args

    let exampleCounts =
        if filter.IsNone then
            let examples = exampleTests ()
            let passed, failed = CrashTest.crashTests ()

            examples
            + { Counts.Zero with
                  Passed = passed
                  Failed = failed
              }
        else
            printfn "WAL_TEST_FILTER is set, so the examples and the crash-test table are not run"
            Counts.Zero

    let noUnitTests = units.Passed + units.Failed = 0

    if testCode <> 0 then
        eprintfn "build.fsx: the unit tests exited with %d" testCode

    if noUnitTests then
        eprintfn "build.fsx: no unit test was executed"

    let total = units + exampleCounts

    let skipped =
        if total.Skipped > 0 then
            $", {total.Skipped} skipped"
        else
            ""

    printfn $"tests: {total.Passed} passed, {total.Failed} failed{skipped}"

    if testCode <> 0 then
        exit testCode

    if total.Failed > 0 || noUnitTests then
        exit 1
