/// Measuring the code: write-path figures, and mutation testing (which cannot run now).
module Bench

#load "Shell.fsx"
#load "Etcd.fsx"
#load "Debian.fsx"

open Shell

/// The bench table (bench/README.md): builds the etcd peer when it can and bench/Wal.Bench, then
/// runs `wal-bench table` with `args` (--workloads FILE, --size 128MB, ...; the environment's
/// WAL_BENCH_WORKLOADS and WAL_BENCH_SIZE too). No timed tests anywhere: ratios in one run. Without
/// Go the etcd column is left out.
let bench (args: string list) =
    match Etcd.buildPeer () with
    | Ok _ -> ()
    | Error reason -> eprintfn "build.fsx: %s; the etcd column is left out" reason

    if not (onPath "strace") then
        match Debian.ensure [ "strace" ] with
        | Ok() -> ()
        | Error reason -> eprintfn "build.fsx: %s; the durability row is left out" reason

    dotnet [ "build"; "bench/Wal.Bench/Wal.Bench.fsproj"; "-c"; "Release"; "-v"; "quiet" ]
    dotnet ([ "bench/Wal.Bench/bin/Release/net10.0/wal-bench.dll"; "table" ] @ args)

/// The tools on a log of about 1 GB (bench/tools.fsx): `wal verify`, `check-dir`, `dump --json`
/// and `dump`, each with its time and peak RSS beside `cat | wc -c` or `cat | base64` on the
/// same files. Peak RSS comes from GNU time (Debian's `time`), installed when missing.
let tools () =
    if not (System.IO.File.Exists "/usr/bin/time") then
        match Debian.ensure [ "time" ] with
        | Ok() -> ()
        | Error reason -> fail $"/usr/bin/time (GNU time) is needed for peak RSS: {reason}"

    dotnet [ "fsi"; "bench/tools.fsx" ]

/// Mutation testing of Wal.Core's engine, decoder and recovery code (tests/Wal.Mutation
/// /stryker-config.json). Stryker.NET drives tests through VSTest, and no Expecto adapter is
/// served here, so tests/Wal.Mutation lists every Expecto test as an NUnit case. The report
/// lands in tests/Wal.Mutation/StrykerOutput.
let stryker () =
    dotnet
        [
            "build"
            "tests/Wal.Mutation/Wal.Mutation.fsproj"
            "-c"
            "Release"
            "-v"
            "quiet"
        ]

    // Stryker finds its configuration, and the test project, in the directory it starts in.
    run "sh" [ "-c"; "cd tests/Wal.Mutation && dotnet stryker" ]
