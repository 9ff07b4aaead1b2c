// The repository's build script: `dotnet fsi build.fsx <target>`; run it without a target to list them.
// Plain F# on the .NET base library (no FAKE), so a machine with the .NET SDK needs nothing else.
// The targets are a table over the files in build/: Shell (running programs), Feed (the NuGet
// feed, restore, build), Etcd (the etcd peer and corpus), Examples (pack, example scripts),
// Tests (the Expecto suites and the summary line), CrashTest (`wal crash-test` on a table of
// drivers), Explore (the main job), ClassicBugs, Bench, Format.

#load "build/Shell.fsx"
#load "build/Feed.fsx"
#load "build/Etcd.fsx"
#load "build/Examples.fsx"
#load "build/Tests.fsx"
#load "build/Explore.fsx"
#load "build/ClassicBugs.fsx"
#load "build/Bench.fsx"
#load "build/Format.fsx"
#load "build/CrashTest.fsx"

open Feed

/// What follows `bench` (and an optional `--`) on the command line: the bench table's options.
let benchArguments =
    match fsi.CommandLineArgs |> Array.tail |> List.ofArray with
    | "bench" :: "--" :: rest
    | "bench" :: rest -> rest
    | _ -> []

let targets =
    [
        "restore", "restore the dotnet tools and the Paket packages (NUGET_SOURCE from the NuGet config)", restore
        "install", "dotnet paket install, keeping %NUGET_SOURCE% in paket.lock", (fun () -> paket "install")
        "update", "dotnet paket update, keeping %NUGET_SOURCE% in paket.lock", (fun () -> paket "update")
        "build", "restore, then build Wal.sln in Release", build
        "check",
        "build, then the main job: explore WAL_CHECK_STATES (default 1,000,000) crash states",
        (fun () ->
            build ()
            Explore.check ())
        "classic-bugs",
        "show that the suites catch each patch in tests/classic-bugs (scratch clone of HEAD)",
        ClassicBugs.classicBugs
        "corpus", "regenerate tests/Wal.Properties/corpus/etcd-3.4 with the etcd peer", Etcd.corpus
        "peer",
        "build the etcd peer (interop/etcd/peer), installing Go and etcd's source from Debian if missing",
        Etcd.peer
        "test",
        "build, run the Expecto suites (WAL_TEST_FILTER: Expecto filter options; WAL_ETCD=skip leaves out Interop), every example and the crash-test table",
        (fun () ->
            build ()
            Tests.test ())
        "crash-test",
        "build, then `wal crash-test` with a bounded budget on each driver of build/CrashTest.fsx",
        (fun () ->
            build ()

            if snd (CrashTest.crashTests ()) > 0 then
                Shell.fail "a driver did not give the exit code its row expects")
        "examples",
        "build, then run every examples/*.fsx",
        (fun () ->
            build ()

            if (Tests.exampleTests ()).Failed > 0 then
                Shell.fail "some examples failed")
        "bench",
        "build, then print the bench table (bench/README.md; options after --: --workloads FILE, --size 128MB)",
        (fun () ->
            build ()
            Bench.bench benchArguments)
        "tools-bench",
        "build, then time `wal verify`, `check-dir`, `dump --json` and `dump` on a 1 GB log beside cat (bench/tools.fsx)",
        (fun () ->
            build ()
            Bench.tools ())
        "stryker",
        "mutation testing of Wal.Core's engine, decoder and recovery code by the suites (hours on 2 cores; docs/testing.md)",
        Bench.stryker
        "pack",
        "build, then pack the packable projects into artifacts/",
        (fun () ->
            build ()
            Examples.packBuilt ())
        "api-docs",
        "build, then the API reference from the XML docs (fsdocs) into artifacts/api-docs",
        (fun () ->
            build ()
            Examples.apiDocs ())
        "format",
        "format the F# (fantomas) and C# (dotnet format) sources",
        (fun () ->
            restore ()
            Format.format false)
        "format-check",
        "fail if formatting would change anything",
        (fun () ->
            restore ()
            Format.format true)
    ]

let usage () =
    printfn "usage: dotnet fsi build.fsx <target>\n\ntargets:"

    for name, description, _ in targets do
        printfn "  %-13s %s" name description

    exit 2

// The bench target alone takes options (benchArguments); every other target stands alone.
let targetArguments =
    match fsi.CommandLineArgs |> Array.tail with
    | args when args.Length > 0 && args[0] = "bench" -> [| "bench" |]
    | args -> args

match targetArguments with
| [| name |] ->
    match targets |> List.tryFind (fun (target, _, _) -> target = name) with
    | Some(_, _, body) -> body ()
    | None ->
        eprintfn "build.fsx: unknown target '%s'" name
        usage ()
| _ -> usage ()
