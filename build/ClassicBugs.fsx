/// The classic WAL bugs (tests/classic-bugs/*.patch): each is put into a scratch clone of HEAD
/// to show that the crash and model properties and the explorer each catch it; the oracle
/// column (the engine through its adapter, explored by OracleExplorer) is for information.
module ClassicBugs

#load "Shell.fsx"
#load "Explore.fsx"
#load "Tests.fsx"

open System
open System.IO
open Shell

/// A patch's number, from its name (`14-...patch`).
let private number (patch: string) =
    int ((Path.GetFileName patch).Split('-')[0])

/// Puts each classic WAL bug into a scratch clone of HEAD and runs the suites and the explorer on it.
let classicBugs () =
    let scratch =
        Path.Combine(Path.GetTempPath(), $"wal-classic-bugs-{Guid.NewGuid():N}")

    run "git" [ "clone"; "--quiet"; "."; scratch ]

    let patches =
        // The clone's own patches, so that the tree and its bugs are of one commit.
        Directory.GetFiles(Path.Combine(scratch, "tests", "classic-bugs"), "*.patch")
        // By number: 2 before 10.
        |> Array.sortBy number
        // WAL_CLASSIC_BUGS=14,15 runs those alone: after a change to the code a few patches touch.
        |> Array.filter (fun p ->
            match Environment.GetEnvironmentVariable "WAL_CLASSIC_BUGS" with
            | null
            | "" -> true
            | chosen -> chosen.Split(',') |> Array.exists (fun n -> n.Trim() = string (number p)))

    /// Whether any of these test lists (Expecto `--filter` prefixes) fails in the scratch clone.
    let failsIn (lists: string list) =
        lists
        |> List.map (fun list -> exec "dotnet" [ Path.Combine(scratch, Tests.testProgram); "--filter"; list ])
        |> List.exists ((<>) 0)

    let rows =
        [
            for patch in patches do
                run "git" [ "-C"; scratch; "checkout"; "--quiet"; "." ]
                run "git" [ "-C"; scratch; "apply"; Path.GetFullPath patch ]
                run "dotnet" [ "build"; Path.Combine(scratch, "Wal.sln"); "-c"; "Release"; "-v"; "quiet" ]

                let suite =
                    failsIn
                        [
                            "Wal.CrashProperties"
                            "Wal.CrashExamples"
                            "Wal.ModelProperties"
                            "Wal.RaftLog"
                        ]

                // The main job as CI runs it: the default budget of one million crash states (it
                // stops at the first divergence, so a caught bug costs only the states it needed).
                let explorer = exec "dotnet" [ Path.Combine(scratch, Explore.wal); "explore" ]

                // The engine through its Oracle adapter, as another implementation would be
                // checked: the oracle's crash-state explorer (OracleExplorer), enumerated images.
                // WAL_CLASSIC_ORACLE=skip leaves this informational column out (it takes minutes a bug).
                let oracle =
                    if Environment.GetEnvironmentVariable "WAL_CLASSIC_ORACLE" = "skip" then
                        None
                    else
                        Some(failsIn [ "Wal.OracleExploreTests" ])

                let name = Path.GetFileNameWithoutExtension patch
                // Each row as soon as it is known: a long run that is stopped still shows its rows.
                printfn "classic bug %s: properties %b, explorer %b, oracle %A" name suite (explorer <> 0) oracle
                name, suite, explorer <> 0, oracle
        ]

    Directory.Delete(scratch, true)
    printfn "\n%-45s %-14s %-14s %-14s" "classic bug" "properties" "explorer" "oracle"

    for name, suite, explorer, oracle in rows do
        let verdict caught = if caught then "caught" else "MISSED"

        let oracleVerdict =
            match oracle with
            | Some caught -> verdict caught
            | None -> "not run"

        printfn "%-45s %-14s %-14s %-14s" name (verdict suite) (verdict explorer) oracleVerdict

    // The oracle column is for information: it explores 40 sequences, not the suites' depth.
    if rows |> List.exists (fun (_, suite, explorer, _) -> not suite || not explorer) then
        fail "a classic WAL bug went unnoticed"
