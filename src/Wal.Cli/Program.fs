/// The `wal` command-line tool.
module Wal.Cli.Program

open Argu

type Command =
    | [<CliPrefix(CliPrefix.None)>] Explore of ParseResults<Explore.ExploreArgs>

    interface IArgParserTemplate with
        member this.Usage =
            match this with
            | Explore _ -> "explore crash states of the engine against the model (the main job)."

[<EntryPoint>]
let main argv =
    let parser = ArgumentParser.Create<Command>(programName = "wal")

    try
        let results = parser.ParseCommandLine(argv, raiseOnUsage = true)

        match results.GetSubCommand() with
        | Explore args -> Explore.run args
    with :? ArguParseException as e ->
        eprintfn "%s" e.Message
        if e.ErrorCode = ErrorCode.HelpText then 0 else 2
