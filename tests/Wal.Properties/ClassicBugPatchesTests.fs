/// The planted bugs of tests/classic-bugs must keep applying to the tree: a patch that rots
/// silently stops proving that the checks catch its bug (`build.fsx classic-bugs` runs them).
module Wal.Properties.ClassicBugPatchesTests

open System.Diagnostics
open System.IO
open Expecto
open Wal.Properties.Support

let ``every classic bug still applies to the tree`` () =
    let patches =
        Directory.GetFiles(Path.Combine(repository.Value, "tests", "classic-bugs"), "*.patch")
        |> Array.sort

    Expect.isGreaterThanOrEqual patches.Length 12 "the planted bugs"

    for patch in patches do
        let info =
            ProcessStartInfo("git", [ "-C"; repository.Value; "apply"; "--check"; patch ], RedirectStandardError = true)

        use git = Process.Start info
        let err = git.StandardError.ReadToEnd()
        git.WaitForExit()
        Expect.equal git.ExitCode 0 $"{Path.GetFileName patch} no longer applies: {err}"

/// This file's tests.
let tests =
    testList
        "ClassicBugPatchesTests"
        [
            testCase "every classic bug still applies to the tree" ``every classic bug still applies to the tree``
        ]
