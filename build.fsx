// The repository's build script: `dotnet fsi build.fsx <target>`; run it without a target to list them.
// Plain F# on the .NET base library (no FAKE), so a machine with the .NET SDK needs nothing else.

open System
open System.Diagnostics
open System.IO
open System.Text.RegularExpressions
open System.Xml.Linq

Environment.CurrentDirectory <- __SOURCE_DIRECTORY__

let fail (message: string) =
    eprintfn "build.fsx: %s" message
    exit 1

/// An argument as it would be typed into a shell, for echoing commands.
let quote (arg: string) =
    if
        arg = ""
        || arg |> Seq.exists (fun c -> Char.IsWhiteSpace c || c = ';' || c = '"')
    then
        "\"" + arg.Replace("\"", "\\\"") + "\""
    else
        arg

/// Echoes a command, runs it with its output streaming straight through, and returns its exit code.
let exec (command: string) (args: string list) =
    printfn "> %s" (String.concat " " (command :: List.map quote args))
    stdout.Flush()
    use proc = Process.Start(ProcessStartInfo(command, args, UseShellExecute = false))
    proc.WaitForExit()
    proc.ExitCode

/// Runs a command and stops the script with its exit code if it fails.
let run command args =
    match exec command args with
    | 0 -> ()
    | code -> exit code

let dotnet args = run "dotnet" args

// ---- The NuGet feed: taken from the machine's NuGet configuration, never written into the repository.

let feedVariable = "NUGET_SOURCE"
let feedPlaceholder = "%" + feedVariable + "%"

/// The first enabled source in `dotnet nuget list source --format short` (lines like `E https://host/v3/index.json`).
let firstEnabledSource () =
    let args = [ "nuget"; "list"; "source"; "--format"; "short" ]
    printfn "> dotnet %s" (String.concat " " args)

    use proc =
        Process.Start(ProcessStartInfo("dotnet", args, UseShellExecute = false, RedirectStandardOutput = true))

    let listing = proc.StandardOutput.ReadToEnd()
    proc.WaitForExit()

    if proc.ExitCode <> 0 then
        exit proc.ExitCode

    listing.Split('\n')
    |> Array.tryPick (fun line ->
        match line.Trim().Split(' ', 2, StringSplitOptions.RemoveEmptyEntries) with
        | [| flags; url |] when flags.StartsWith 'E' && Seq.forall Char.IsUpper flags -> Some(url.Trim())
        | _ -> None)

/// Sets NUGET_SOURCE for every child process, unless the caller already did.
let ensureFeed () =
    if String.IsNullOrEmpty(Environment.GetEnvironmentVariable feedVariable) then
        match firstEnabledSource () with
        | Some url ->
            Environment.SetEnvironmentVariable(feedVariable, url)
            printfn "%s set from the first enabled NuGet source" feedVariable
        | None -> fail $"{feedVariable} is unset and the NuGet configuration has no enabled source"

/// Turns every `remote: <feed url>` line Paket wrote into paket.lock back into `remote: %NUGET_SOURCE%`.
let restoreLockPlaceholder () =
    let feed = Environment.GetEnvironmentVariable feedVariable
    let text = File.ReadAllText "paket.lock"
    let pattern = @"(?m)^(\s*remote:[ \t]*)" + Regex.Escape feed + @"[ \t]*(?=\r?$)"
    let placeheld = Regex.Replace(text, pattern, "${1}" + feedPlaceholder)

    if placeheld <> text then
        File.WriteAllText("paket.lock", placeheld)
        printfn "paket.lock: the feed's URL is replaced by %s again" feedPlaceholder

// ---- Targets

let restore () =
    ensureFeed ()
    dotnet [ "tool"; "restore" ]
    dotnet [ "paket"; "restore" ]

/// `dotnet paket install` or `update`; paket.lock gets its placeholder back even if Paket fails.
let paket command =
    ensureFeed ()
    dotnet [ "tool"; "restore" ]
    let code = exec "dotnet" [ "paket"; command ]
    restoreLockPlaceholder ()

    if code <> 0 then
        exit code

let build () =
    restore ()
    dotnet [ "build"; "Wal.sln"; "-c"; "Release" ]

/// This repository's packages, as scripts meet them from a feed.
let packageIds = [ "Wal.Core"; "Wal.Model"; "Wal.Oracle"; "Wal.Simulation"; "Wal.Cli" ]

/// Packs the packable projects into artifacts/ (after a build). Every build packs version
/// 0.1.0 again, so the copies NuGet keeps of earlier packs are removed first, or scripts would
/// go on seeing them.
let packBuilt () =
    let cache =
        match Environment.GetEnvironmentVariable "NUGET_PACKAGES" with
        | null
        | "" -> Path.Combine(Environment.GetFolderPath Environment.SpecialFolder.UserProfile, ".nuget", "packages")
        | path -> path

    for id in packageIds do
        let cached = Path.Combine(cache, id.ToLowerInvariant())

        if Directory.Exists cached then
            Directory.Delete(cached, true)

    dotnet [ "pack"; "Wal.sln"; "-c"; "Release"; "--no-build"; "-o"; "artifacts" ]

let pack () =
    build ()
    packBuilt ()

let exampleScripts () =
    if Directory.Exists "examples" then
        Directory.GetFiles("examples", "*.fsx") |> Array.sort |> List.ofArray
    else
        []

/// A script outside the repository's folders that takes the packages the way the README says
/// any script can: `#i "nuget: <repo>/artifacts"`, then `#r "nuget: ..."`.
let feedScript () =
    let script =
        Path.Combine(Path.GetTempPath(), $"wal-from-artifacts-{Guid.NewGuid():N}.fsx")

    let artifacts = Path.GetFullPath "artifacts"

    File.WriteAllText(
        script,
        String.concat
            "\n"
            [
                $"#i \"nuget: {artifacts}\""
                "#r \"nuget: Wal.Core\""
                "#r \"nuget: Wal.Model\""
                "#r \"nuget: Wal.Oracle\""
                "let report = Wal.Oracle.Trace.parse \"create \\\"a\\\"\\nclose\\nopen 0/0 -> read \\\"a\\\" 0/0/0 []\\n\""
                "match report with"
                "| Ok lines when Wal.Oracle.Trace.check lines = Wal.Oracle.Trace.Allowed 1 -> printfn \"packages from %s: %O\" (System.IO.Path.GetDirectoryName typeof<Wal.WriteAheadLog>.Assembly.Location) Wal.WalOptions.Default.SegmentSizeBytes"
                "| other -> failwithf \"%A\" other"
            ]
    )

    script

/// Packs, then runs every example script (they take the packages from artifacts/, as
/// examples/NuGet.Config says) and a script that takes them with #i, returning each one's exit code.
let runExamples () =
    packBuilt ()

    [
        for script in exampleScripts () @ [ feedScript () ] do
            let code = exec "dotnet" [ "fsi"; script ]

            if code <> 0 then
                eprintfn "build.fsx: %s exited with %d" script code

            script, code
    ]

let wal = Path.Combine("src", "Wal.Cli", "bin", "Release", "net10.0", "wal.dll")

/// The crash-state budget of the main job: WAL_CHECK_STATES, or one million.
let checkStates () =
    match Environment.GetEnvironmentVariable "WAL_CHECK_STATES" with
    | null
    | "" -> "1000000"
    | n -> n

/// The main job: explore crash states of the engine against the model (`wal explore`), failing
/// on any divergence with the shrunk counterexample printed.
let check () =
    build ()
    dotnet [ wal; "explore"; "--states"; checkStates () ]

/// Puts each classic WAL bug (tests/classic-bugs/*.patch) into a scratch clone of HEAD and shows
/// that the crash properties and the explorer each catch it.
let classicBugs () =
    let scratch =
        Path.Combine(Path.GetTempPath(), $"wal-classic-bugs-{Guid.NewGuid():N}")

    run "git" [ "clone"; "--quiet"; "."; scratch ]

    let patches =
        Directory.GetFiles(Path.Combine("tests", "classic-bugs"), "*.patch")
        |> Array.sort

    let inScratch (args: string list) = exec "dotnet" args

    /// The scratch clone's tests whose names match the filter; the exit code.
    let testsIn (filter: string) =
        inScratch
            [
                "test"
                Path.Combine(scratch, "tests", "Wal.Properties")
                "-c"
                "Release"
                "--no-build"
                "--filter"
                filter
            ]

    let rows =
        [
            for patch in patches do
                run "git" [ "-C"; scratch; "checkout"; "--quiet"; "." ]
                run "git" [ "-C"; scratch; "apply"; Path.GetFullPath patch ]
                run "dotnet" [ "build"; Path.Combine(scratch, "Wal.sln"); "-c"; "Release"; "-v"; "quiet" ]

                let suite =
                    testsIn "FullyQualifiedName~CrashProperties|FullyQualifiedName~ModelProperties"

                let explorer =
                    inScratch [ Path.Combine(scratch, wal); "explore"; "--states"; "300000" ]

                // The engine through its Oracle adapter, as another implementation would be checked.
                let oracle = testsIn "FullyQualifiedName~OracleTests"

                Path.GetFileNameWithoutExtension patch, suite <> 0, explorer <> 0, oracle <> 0
        ]

    Directory.Delete(scratch, true)
    printfn "\n%-45s %-14s %-14s %-14s" "classic bug" "properties" "explorer" "oracle"

    for name, suite, explorer, oracle in rows do
        let verdict caught = if caught then "caught" else "MISSED"
        printfn "%-45s %-14s %-14s %-14s" name (verdict suite) (verdict explorer) (verdict oracle)

    // The oracle column is for information: it runs a few hundred sequences, not the suites' depth.
    if rows |> List.exists (fun (_, suite, explorer, _) -> not suite || not explorer) then
        fail "a classic WAL bug went unnoticed"

// ---- The etcd peer: etcd 3.4's own wal package (Debian's golang-etcd-server-dev), driven by
// interop/etcd/peer so the Interop tests can compare the engine with etcd itself.

let peerBinary =
    Path.GetFullPath(Path.Combine("interop", "etcd", "bin", "etcd-peer"))

let etcdWalSource = "/usr/share/gocode/src/go.etcd.io/etcd/wal/wal.go"

let onPath (program: string) =
    (Environment.GetEnvironmentVariable "PATH").Split(':')
    |> Array.exists (fun dir -> dir <> "" && File.Exists(Path.Combine(dir, program)))

/// Go and etcd's source, from Debian, when missing: as root directly, otherwise through sudo.
let installGoAndEtcd () =
    let packages = [ "golang-go"; "golang-etcd-server-dev" ]

    if onPath "go" && File.Exists etcdWalSource then
        Ok()
    elif not (onPath "apt-get") then
        Error "Go and etcd's source are missing and there is no apt-get to install golang-go and golang-etcd-server-dev"
    else
        let asRoot = Environment.UserName = "root"

        let sudo command args =
            if asRoot then
                exec command args
            elif onPath "sudo" then
                exec "sudo" ("-n" :: command :: args)
            else
                1

        let env = [ "DEBIAN_FRONTEND=noninteractive" ]

        if
            sudo "env" (env @ [ "apt-get"; "update"; "-q" ]) = 0
            && sudo "env" (env @ [ "apt-get"; "install"; "-y"; "-q"; "--no-install-recommends" ] @ packages) = 0
        then
            Ok()
        else
            Error
                "installing golang-go and golang-etcd-server-dev with apt-get failed (root or passwordless sudo is needed)"

/// Builds interop/etcd/peer in GOPATH mode against Debian's etcd source (no download).
let buildPeer () =
    match installGoAndEtcd () with
    | Error reason -> Error reason
    | Ok() ->
        let gopath = Path.GetFullPath(Path.Combine("interop", "etcd", ".gopath"))
        let link = Path.Combine(gopath, "src", "etcd-peer")
        Directory.CreateDirectory(Path.GetDirectoryName link) |> ignore

        if not (Directory.Exists link) then
            Directory.CreateSymbolicLink(link, Path.GetFullPath(Path.Combine("interop", "etcd", "peer")))
            |> ignore

        printfn "> go build -o %s (GOPATH=%s:/usr/share/gocode, GO111MODULE=off)" peerBinary gopath
        stdout.Flush()

        let info =
            ProcessStartInfo("go", [ "build"; "-o"; peerBinary; "." ], UseShellExecute = false, WorkingDirectory = link)

        info.Environment["GO111MODULE"] <- "off"
        info.Environment["GOPATH"] <- gopath + ":/usr/share/gocode"
        info.Environment["GOFLAGS"] <- ""
        use proc = Process.Start info
        proc.WaitForExit()

        if proc.ExitCode = 0 then
            Ok peerBinary
        else
            Error $"go build of interop/etcd/peer failed ({proc.ExitCode})"

let peer () =
    match buildPeer () with
    | Ok path -> printfn "etcd peer: %s" path
    | Error reason -> fail reason

/// Output of the peer, or the script stops.
let peerOutput (args: string list) =
    let info =
        ProcessStartInfo(peerBinary, args, UseShellExecute = false, RedirectStandardOutput = true)

    use proc = Process.Start info
    let out = proc.StandardOutput.ReadToEnd()
    proc.WaitForExit()

    if proc.ExitCode <> 0 then
        fail $"""etcd-peer {String.Join(" ", args)} failed"""

    out.Trim()

/// Regenerates tests/Wal.Properties/corpus/etcd-3.4 from interop/etcd/corpus/*.json: for each
/// script, the WAL etcd writes and etcd's verdicts on it (expected.txt), so the compatibility
/// tests run where there is no Go.
let corpus () =
    match buildPeer () with
    | Error reason -> fail reason
    | Ok _ -> ()

    let target = Path.Combine("tests", "Wal.Properties", "corpus", "etcd-3.4")

    if Directory.Exists target then
        Directory.Delete(target, true)

    let scratch = Path.Combine(Path.GetTempPath(), $"wal-corpus-{Guid.NewGuid():N}")

    let copyOf (wal: string) (name: string) =
        let dir = Path.Combine(scratch, name)
        Directory.CreateDirectory dir |> ignore

        for f in Directory.GetFiles wal do
            File.Copy(f, Path.Combine(dir, Path.GetFileName f))

        dir

    for script in
        Directory.GetFiles(Path.Combine("interop", "etcd", "corpus"), "*.json")
        |> Array.sort do
        let name = Path.GetFileNameWithoutExtension script
        let wal = Path.Combine(target, name, "wal")
        peerOutput [ "write"; wal; script ] |> ignore

        use doc = Text.Json.JsonDocument.Parse(File.ReadAllText script)

        let reads =
            [
                for r in doc.RootElement.GetProperty("reads").EnumerateArray() -> r.GetString()
            ]

        let lines =
            [
                for at in reads do
                    $"read {at} " + peerOutput [ "read"; copyOf wal $"{name}-read-{at}"; at ]

                    $"open {at} "
                    + peerOutput [ "read"; copyOf wal $"{name}-open-{at}"; at; "write" ]
                let repaired = copyOf wal $"{name}-repair"
                "repair - " + peerOutput [ "repair"; repaired ]
                "repaired-read 0:0 " + peerOutput [ "read"; repaired; "0:0" ]
            ]

        File.Copy(script, Path.Combine(target, name, "script.json"))
        File.WriteAllLines(Path.Combine(target, name, "expected.txt"), lines)
        printfn "%s: %d segments, %d verdicts" name (Directory.GetFiles wal).Length lines.Length

    Directory.Delete(scratch, true)

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

/// The `<Counters .../>` of a TRX file's ResultSummary.
let trxCounts (file: string) =
    let counters =
        XDocument.Load(file).Descendants()
        |> Seq.find (fun e -> e.Name.LocalName = "Counters")

    let count name =
        match counters.Attribute(XName.Get name) with
        | null -> 0
        | attribute -> int attribute.Value

    {
        Passed = count "passed"
        Failed = count "failed" + count "error" + count "timeout" + count "aborted"
        Skipped = count "total" - count "executed"
    }

/// Runs `dotnet test` with a TRX logger (narrowed by WAL_TEST_FILTER when set); returns its exit code and the counts.
let unitTests filterArgs =
    if Directory.Exists resultsDirectory then
        Directory.Delete(resultsDirectory, true)

    let trxArgs =
        [ "--logger"; "trx;LogFilePrefix=Wal"; "--results-directory"; resultsDirectory ]

    let code =
        exec "dotnet" ([ "test"; "Wal.sln"; "-c"; "Release"; "--no-build" ] @ trxArgs @ filterArgs)

    let trxFiles =
        if Directory.Exists resultsDirectory then
            Directory.GetFiles(resultsDirectory, "*.trx", SearchOption.AllDirectories)
        else
            [||]

    code, trxFiles |> Array.map trxCounts |> Array.fold (+) Counts.Zero

/// Every example, each counted as one test.
let exampleTests () =
    let codes = runExamples () |> List.map snd
    let failed = codes |> List.filter ((<>) 0) |> List.length

    let counts =
        { Counts.Zero with
            Passed = codes.Length - failed
            Failed = failed
        }

    if not codes.IsEmpty then
        printfn $"examples: {counts.Passed} passed, {counts.Failed} failed"

    counts

let examples () =
    build ()

    if (exampleTests ()).Failed > 0 then
        fail "some examples failed"

/// Write-path figures: throughput and allocation per entry, side by side (no timed tests anywhere).
let bench () =
    build ()

    // The etcd columns need the peer; without Go the engine's figures still print.
    match buildPeer () with
    | Ok _ -> ()
    | Error reason -> eprintfn "build.fsx: %s; the etcd columns are left out" reason

    dotnet [ "fsi"; "bench/throughput.fsx" ]

/// Stryker.NET over Wal.Core's durability code (tests/Wal.Properties/stryker-config.json), with
/// every suite as the judge. Slow (each mutant runs the suites), so not part of CI.
let stryker () =
    build ()

    run
        "dotnet"
        [
            "tool"
            "run"
            "dotnet-stryker"
            "--config-file"
            Path.Combine("tests", "Wal.Properties", "stryker-config.json")
        ]

/// Every test: the unit tests, then the examples; the last line printed is the `tests: ...` summary.
let test () =
    build ()

    // The Interop tests run etcd's own code; WAL_ETCD=skip leaves them out (and says so), for
    // machines that cannot install Go and etcd's source. CI never sets it.
    let skipEtcd = Environment.GetEnvironmentVariable "WAL_ETCD" = "skip"

    if skipEtcd then
        printfn "WAL_ETCD=skip: the Interop tests (etcd's own code) are not run"
    else
        match buildPeer () with
        | Ok path -> Environment.SetEnvironmentVariable("WAL_ETCD_PEER", path)
        | Error reason -> fail $"{reason}; the Interop tests need the etcd peer (set WAL_ETCD=skip to leave them out)"

    let filter =
        [
            match Environment.GetEnvironmentVariable "WAL_TEST_FILTER" with
            | null
            | "" -> ()
            | filter -> $"({filter})"
            if skipEtcd then
                "TestCategory!=Interop"
        ]

    let filterArgs =
        if filter.IsEmpty then
            []
        else
            [ "--filter"; String.Join("&", filter) ]

    let testCode, units = unitTests filterArgs

    let exampleCounts =
        if String.IsNullOrEmpty(Environment.GetEnvironmentVariable "WAL_TEST_FILTER") then
            exampleTests ()
        else
            printfn "WAL_TEST_FILTER is set, so the examples are not run"
            Counts.Zero

    let noUnitTests = units.Passed + units.Failed = 0

    if testCode <> 0 then
        eprintfn "build.fsx: dotnet test exited with %d" testCode

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


/// Fantomas for the F# sources and this script, `dotnet format` for the C# engine.
let format verify =
    restore ()

    let fsharp =
        [ "src"; "tests"; "examples"; "bench"; "build.fsx" ]
        |> List.filter (fun path -> Directory.Exists path || File.Exists path)

    dotnet ([ "fantomas" ] @ (if verify then [ "--check" ] else []) @ fsharp)

    dotnet (
        [ "format"; "src/Wal.Core/Wal.Core.csproj" ]
        @ (if verify then [ "--verify-no-changes" ] else [])
    )

let targets =
    [
        "restore", "restore the dotnet tools and the Paket packages (NUGET_SOURCE from the NuGet config)", restore
        "install", "dotnet paket install, keeping %NUGET_SOURCE% in paket.lock", (fun () -> paket "install")
        "update", "dotnet paket update, keeping %NUGET_SOURCE% in paket.lock", (fun () -> paket "update")
        "build", "restore, then build Wal.sln in Release", build
        "check", "build, then the main job: explore WAL_CHECK_STATES (default 1,000,000) crash states", check
        "classic-bugs",
        "show that the suites catch each patch in tests/classic-bugs (scratch clone of HEAD)",
        classicBugs
        "corpus", "regenerate tests/Wal.Properties/corpus/etcd-3.4 with the etcd peer", corpus
        "peer", "build the etcd peer (interop/etcd/peer), installing Go and etcd's source from Debian if missing", peer
        "test",
        "build, run the unit tests (WAL_TEST_FILTER narrows them; WAL_ETCD=skip leaves out etcd) and every example",
        test
        "examples", "build, then run every examples/*.fsx", examples
        "bench", "build, then print write-path figures (bench/throughput.fsx)", bench
        "stryker", "mutation testing of Wal.Core's durability code with these suites (slow; not in CI)", stryker
        "pack", "build, then pack the packable projects into artifacts/", pack
        "format", "format the F# (fantomas) and C# (dotnet format) sources", (fun () -> format false)
        "format-check", "fail if formatting would change anything", (fun () -> format true)
    ]

let usage () =
    printfn "usage: dotnet fsi build.fsx <target>\n\ntargets:"

    for name, description, _ in targets do
        printfn "  %-13s %s" name description

    exit 2

match fsi.CommandLineArgs |> Array.tail with
| [| name |] ->
    match targets |> List.tryFind (fun (target, _, _) -> target = name) with
    | Some(_, _, body) -> body ()
    | None ->
        eprintfn "build.fsx: unknown target '%s'" name
        usage ()
| _ -> usage ()
