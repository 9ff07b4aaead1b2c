/// Formatting: Fantomas for the F# sources and the build scripts, `dotnet format` for the C# engine.
module Format

#load "Shell.fsx"

open System.IO
open Shell

/// Fantomas for the F# sources and the build scripts, `dotnet format` for the C# engine.
let format verify =
    let fsharp =
        [ "src"; "tests"; "examples"; "bench"; "build"; "build.fsx" ]
        |> List.filter (fun path -> Directory.Exists path || File.Exists path)

    dotnet ([ "fantomas" ] @ (if verify then [ "--check" ] else []) @ fsharp)

    dotnet (
        [ "format"; "src/Wal.Core/Wal.Core.csproj" ]
        @ (if verify then [ "--verify-no-changes" ] else [])
    )
