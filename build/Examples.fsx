/// Packing the packable projects into artifacts/, their API reference, and running the example
/// scripts against the packages.
module Examples

#load "Shell.fsx"

open System
open System.IO
open Shell

/// This repository's packages, as scripts meet them from a feed.
let packageIds =
    [
        "Wal.Core"
        "Wal.Model"
        "Wal.FSharp"
        "Wal.Oracle"
        "Wal.Simulation"
        "Wal.Cli"
    ]

/// Packs the packable projects into artifacts/ (after a build), at the one version
/// Directory.Build.props gives. The user's NuGet cache is left alone.
let packBuilt () =
    dotnet [ "pack"; "Wal.sln"; "-c"; "Release"; "--no-build"; "-o"; "artifacts" ]

/// The examples restore into a NuGet cache of this clone's own (.nuget-examples), from
/// which this clone's packages are removed before each run: every pack has the same version, and
/// NuGet would otherwise go on serving the copy of an earlier build. Another clone, or the user's
/// own scripts, never see these copies.
let private examplesCache () =
    let cache = Path.GetFullPath ".nuget-examples"

    for id in packageIds do
        let cached = Path.Combine(cache, id.ToLowerInvariant())

        if Directory.Exists cached then
            Directory.Delete(cached, true)

    cache

/// The API reference of the library packages, from their XML docs, by fsdocs into
/// artifacts/api-docs (docs/site holds its front page; the guides stay Markdown in docs/).
/// `--strict` fails on a doc comment fsdocs cannot read.
let apiDocs () =
    let projects =
        [
            "Wal.Core/Wal.Core.csproj"
            "Wal.Model/Wal.Model.fsproj"
            "Wal.FSharp/Wal.FSharp.fsproj"
            "Wal.Oracle/Wal.Oracle.fsproj"
            "Wal.Simulation/Wal.Simulation.fsproj"
        ]
        |> List.map (fun p -> Path.Combine("src", p))

    dotnet (
        [ "fsdocs"; "build"; "--input"; "docs/site"; "--projects" ]
        @ projects
        @ [
            "--properties"
            "Configuration=Release"
            "--output"
            "artifacts/api-docs"
            "--eval"
            "false"
            "--strict"
            "--clean"
        ]
    )

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

/// The F# snippets of each package's readme (src/*/README.md), as scripts that take the packages
/// from artifacts/: what a NuGet user reads first must run.
let readmeScripts () =
    let artifacts = Path.GetFullPath "artifacts"

    [
        for readme in
            Directory.GetFiles("src", "README.md", SearchOption.AllDirectories)
            |> Array.sort do
            let text = File.ReadAllText readme

            let blocks =
                text.Split("```fsharp\n")
                |> Array.skip 1
                |> Array.map (fun b -> b.Split("```")[0])

            for i, block in Array.indexed blocks do
                let package = Path.GetFileName(Path.GetDirectoryName readme)

                let script =
                    Path.Combine(Path.GetTempPath(), $"wal-readme-{package}-{i}-{Guid.NewGuid():N}.fsx")

                File.WriteAllText(script, $"#i \"nuget: {artifacts}\"\n" + block)
                script
    ]

/// Packs, then runs every example script (they take the packages from artifacts/, as
/// examples/NuGet.Config says) and a script that takes them with #i, returning each one's exit code.
let runExamples () =
    packBuilt ()
    Environment.SetEnvironmentVariable("NUGET_PACKAGES", examplesCache ())

    [
        for script in exampleScripts () @ [ feedScript () ] @ readmeScripts () do
            let code = exec "dotnet" [ "fsi"; script ]

            if code <> 0 then
                eprintfn "build.fsx: %s exited with %d" script code

            script, code
    ]
