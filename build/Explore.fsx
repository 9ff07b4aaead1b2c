/// The main job: explore crash states of the engine against the model with `wal explore`.
module Explore

#load "Shell.fsx"

open System
open System.IO
open Shell

/// The `wal` tool, as `dotnet build` leaves it.
let wal = Path.Combine("src", "Wal.Cli", "bin", "Release", "net10.0", "wal.dll")

/// The crash-state budget of the main job: WAL_CHECK_STATES, or one million.
let checkStates () =
    match Environment.GetEnvironmentVariable "WAL_CHECK_STATES" with
    | null
    | "" -> "1000000"
    | n -> n

/// Explores the crash states (after the build), failing on any divergence with the shrunk
/// counterexample printed.
let check () =
    dotnet [ wal; "explore"; "--states"; checkStates () ]
