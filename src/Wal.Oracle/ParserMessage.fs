/// FParsec's error messages as the project's parsers report them: the trace language and the
/// strace recordings both name what was expected, on one line, beside their own line and column.
[<RequireQualifiedAccess>]
module Wal.Oracle.ParserMessage

open FParsec

/// What the parser expected, on one line. FParsec's message is a position line, the input line, a
/// caret, then what was expected; the first three are the caller's to say in its own terms.
let expected (error: ParserError) =
    let lines = (string error).Split('\n')

    let caret =
        lines
        |> Array.tryFindIndex (fun l -> l.Trim().StartsWith "^")
        |> Option.defaultValue 0

    lines[caret + 1 ..]
    |> Array.map (fun l -> l.Trim())
    |> Array.filter (fun l -> l <> "")
    |> String.concat " "
