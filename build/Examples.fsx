/// Packing the packable projects into artifacts/, and running the example scripts against them.
module Examples

#load "Shell.fsx"

open System
open System.IO
open Shell

/// This repository's packages, as scripts meet them from a feed.
let packageIds =
    [ "Wal.Core"; "Wal.Model"; "Wal.Oracle"; "Wal.Simulation"; "Wal.Cli" ]

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
