// A recording of a process's system calls, as Debian's strace writes it with the options in
// `Strace.options` (every string byte in hex, descriptors decorated with their paths, raw numbers
// for flags, every process and thread followed), read into typed calls. Untrusted text: a line
// that does not read is a typed error with its line and column, never an exception.
namespace Wal.Simulation

open System
open System.Text
open FParsec

/// One argument or result as strace prints it.
type StraceValue =
    /// A number (decimal, 0x hex or 0 octal).
    | Number of int64
    /// A descriptor with the path `-y` decorates it with.
    | Descriptor of fd: int64 * path: string
    /// A string's bytes; `Truncated` when strace cut it short (`...`).
    | Bytes of data: byte[] * truncated: bool
    /// `[a, b]`.
    | Items of StraceValue list
    /// `{name=value, ...}`.
    | Fields of (string * StraceValue) list
    /// `name=value` outside braces (as clone prints its arguments).
    | Named of string * StraceValue
    /// Anything else, kept as text (NULL, symbolic names).
    | Word of string

/// One recorded system call.
type StraceLine =
    {
        /// The line in the recording (from 1).
        Line: int
        /// The process (or thread) that made the call; 0 when the recording has no pids.
        Pid: int
        Name: string
        Args: StraceValue list
        /// The result, or None when the call failed (`= -1 ERRNO`) or has none (`= ?`).
        Result: StraceValue option
    }

/// Why a recording does not read.
type StraceError =
    {
        Line: int
        Column: int
        Message: string
    }

/// Reading strace's text.
[<RequireQualifiedAccess>]
module Strace =
    /// The system calls a recording traces: the file-system calls the replay models, the ones it
    /// reports as unmodellable, and the process calls that tell which descriptor table a pid uses.
    let tracedCalls =
        [
            "openat"
            "open"
            "creat"
            "write"
            "pwrite64"
            "writev"
            "pwritev"
            "pwritev2"
            "lseek"
            "read"
            "ftruncate"
            "truncate"
            "fallocate"
            "fsync"
            "fdatasync"
            "sync_file_range"
            "syncfs"
            "rename"
            "renameat"
            "renameat2"
            "unlink"
            "unlinkat"
            "mkdir"
            "mkdirat"
            "rmdir"
            "close"
            "dup"
            "dup2"
            "dup3"
            "fcntl"
            "clone"
            "clone3"
            "fork"
            "vfork"
            "mmap"
            "msync"
            "io_uring_setup"
            "io_uring_enter"
            "io_uring_register"
            "sync"
            "chdir"
            "fchdir"
            "link"
            "linkat"
            "symlink"
            "symlinkat"
            "copy_file_range"
            "sendfile"
            "splice"
        ]

    /// The largest string strace is asked to print whole.
    [<Literal>]
    let MaxStringBytes = 16777216

    /// The longest line read (a string of `MaxStringBytes` bytes in hex, and the rest).
    [<Literal>]
    let MaxLineChars = 67108960

    /// strace's options for a recording into `output`: children and threads followed, every byte
    /// in hex, descriptors with their paths, numbers raw, no signal or exit lines.
    let options (output: string) =
        [
            "-f"
            "-qq"
            "-X"
            "raw"
            "-xx"
            "-s"
            string MaxStringBytes
            "-y"
            "-e"
            "signal=none"
            "-e"
            "trace=" + String.Join(",", tracedCalls)
            "-o"
            output
        ]

    // A byte as one char (0-255): a run of them is a string, read back with Latin-1, so a 16 MiB
    // write costs two bytes a byte while it is read, not a list cell.
    let private escape: Parser<string, unit> =
        pchar '\\'
        >>. ((pchar 'x' >>. hex .>>. hex
              |>> fun (a, b) -> string (char (Convert.ToInt32(String [| a; b |], 16))))
             <|> (anyOf "nrt\\\"'"
                  |>> fun c ->
                      match c with
                      | 'n' -> "\n"
                      | 'r' -> "\r"
                      | 't' -> "\t"
                      | c -> string c))

    let private stringBody (stop: char) : Parser<byte[], unit> =
        manyStrings (many1Satisfy (fun c -> c <> stop && c <> '\\' && c < '\x80') <|> escape)
        |>> Encoding.Latin1.GetBytes

    let private text (bytes: byte[]) = Encoding.UTF8.GetString bytes

    let private number: Parser<int64, unit> =
        let digits =
            (attempt (pstring "0x" >>. many1Satisfy isHex)
             |>> fun h -> Convert.ToInt64(h, 16))
            <|> (many1Satisfy isDigit
                 >>= fun d ->
                     if d.Length > 1 && d[0] = '0' && d |> Seq.forall (fun c -> c < '8') then
                         preturn (Convert.ToInt64(d, 8))
                     else
                         match Int64.TryParse d with
                         | true, v -> preturn v
                         | _ -> fail "a number within 64 bits")

        attempt (opt (pchar '-') .>>. digits |>> fun (sign, v) -> if sign.IsSome then -v else v)

    let private numberOrDescriptor: Parser<StraceValue, unit> =
        number
        .>>. opt (
            between (pchar '<') (pchar '>') (stringBody '>')
            .>> optional (pstring "(deleted)")
        )
        |>> fun (n, path) ->
            match path with
            | Some p -> Descriptor(n, text p)
            | None -> Number n

    let private value, valueRef = createParserForwardedToRef<StraceValue, unit>()

    let private separator = pstring ", "

    let private identifier =
        many1Satisfy2 (fun c -> isLetter c || c = '_') (fun c -> isLetter c || isDigit c || c = '_')

    let private str =
        between (pchar '"') (pchar '"') (stringBody '"') .>>. opt (pstring "...")
        |>> fun (b, dots) -> Bytes(b, dots.IsSome)

    let private items =
        between (pchar '[') (pchar ']') (sepBy value separator) |>> Items

    let private fields =
        between (pchar '{') (pchar '}') (sepBy (identifier .>> pchar '=' .>>. value) separator)
        |>> Fields

    let private wordOrNamed =
        identifier .>>. opt (pchar '=' >>. value)
        |>> fun (name, v) ->
            match v with
            | Some v -> Named(name, v)
            | None -> Word name

    let private term =
        choice [ str; items; fields; numberOrDescriptor; wordOrNamed; pstring "..." |>> Word ]

    // Flags strace could not name stay as `A|B`, and expressions as `a*b`; kept as words.
    do
        valueRef.Value <-
            // `in => out`: what the kernel changed in a struct; the value passed in is kept.
            term .>>. many (anyOf "|*" >>. term) .>> opt (attempt (pstring " => " >>. term))
            |>> fun (first, rest) ->
                match rest with
                | [] -> first
                | _ -> Word "expression"

    let private result: Parser<StraceValue option, unit> =
        spaces
        >>. pchar '='
        >>. spaces
        >>. choice
                [
                    attempt (number .>> spaces1 .>> satisfy isUpper) >>% None
                    (pchar '?' >>% None)
                    (numberOrDescriptor |>> Some)
                ]
        .>> skipRestOfLine false

    let private call: Parser<int * string * StraceValue list * StraceValue option, unit> =
        pipe4
            (opt (attempt (pint32 .>> spaces1)) |>> Option.defaultValue 0)
            identifier
            (between (pchar '(') (pchar ')') (sepBy value separator))
            result
            (fun pid name args result -> pid, name, args, result)
        .>> eof

    /// A line that strace split around another process's call, joined again.
    let private joinResumed (lines: (int * string) list) =
        let pidOf (line: string) =
            let space = line.IndexOf ' '

            if space > 0 && line.Substring(0, space) |> Seq.forall Char.IsDigit then
                line.Substring(0, space)
            else
                ""

        // A joined call keeps the line it started on, and takes the place of the line it ended on.
        let rec go (waiting: Map<string, int * string>) acc lines =
            match lines with
            | [] -> List.rev acc
            | (n, (line: string)) :: rest ->
                let pid = pidOf line

                if line.EndsWith " <unfinished ...>" then
                    go (waiting.Add(pid, (n, line.Substring(0, line.Length - " <unfinished ...>".Length)))) acc rest
                else
                    let marker = line.IndexOf "<... "
                    let resumed = line.IndexOf " resumed>"

                    if marker >= 0 && resumed > marker then
                        match waiting.TryFind pid with
                        // A call cut short again (the process exited in it) never returned.
                        | Some _ when line.Contains "<unfinished ...>" -> go (waiting.Remove pid) acc rest
                        | Some(started, start) ->
                            go
                                (waiting.Remove pid)
                                ((started, start + line.Substring(resumed + " resumed>".Length)) :: acc)
                                rest
                        | None -> go waiting acc rest
                    else
                        go waiting ((n, line) :: acc) rest

        go Map.empty [] lines

    /// The calls `pruneOutside` blanks when they name no path under the watched tree: each acts
    /// on a descriptor alone (its `-y` path shows where it points), and none matters to the replay
    /// outside the tree.
    let private prunable = [ "read"; "close"; "lseek"; "mmap" ]

    /// A recording with the `read`, `close`, `lseek` and `mmap` calls that name nothing under
    /// `root` blanked, line numbers kept: what a program does at start-up (reading and mapping
    /// its libraries and its own code) is most of a recording, and the replay needs none of it.
    let pruneOutside (root: string) (recording: string) =
        let mark =
            Encoding.UTF8.GetBytes(root.TrimEnd '/')
            |> Array.map (fun b -> $"\\x{b:x2}")
            |> String.concat ""

        // The pids whose unfinished call was blanked, and the call's name.
        let dropped = Collections.Generic.Dictionary<string, string>()

        recording.Split('\n')
        |> Array.map (fun line ->
            let space = line.IndexOf ' '

            let pid, body =
                if space > 0 && Char.IsDigit line[0] then
                    line.Substring(0, space), line.Substring(space).TrimStart()
                else
                    "", line

            let call =
                prunable
                |> List.tryFind (fun name -> body.StartsWith(name + "(", StringComparison.Ordinal))

            match call with
            | Some name when not (line.Contains mark) ->
                if line.EndsWith("<unfinished ...>", StringComparison.Ordinal) then
                    dropped[pid] <- name

                ""
            | _ ->
                match dropped.TryGetValue pid with
                | true, name when body.StartsWith($"<... {name} resumed>", StringComparison.Ordinal) ->
                    dropped.Remove pid |> ignore
                    ""
                | _ -> line)
        |> String.concat "\n"

    /// Reads a recording. Lines strace writes about signals and exits (`---`, `+++`) are skipped;
    /// any other line that is not a call is an error with its line and column.
    let parse (recording: string) : Result<StraceLine list, StraceError> =
        let lines =
            recording.Split('\n')
            |> Array.mapi (fun i l -> i + 1, l.TrimEnd '\r')
            |> Array.filter (fun (_, l) -> l.Trim() <> "")
            |> List.ofArray

        match lines |> List.tryFind (fun (_, l) -> l.Length > MaxLineChars) with
        | Some(n, _) ->
            Result.Error
                {
                    Line = n
                    Column = MaxLineChars
                    Message = $"the line is longer than {MaxLineChars} characters"
                }
        | None ->
            let isNote (line: string) =
                let body =
                    let space = line.IndexOf ' '

                    if space > 0 && line.Substring(0, space) |> Seq.forall Char.IsDigit then
                        line.Substring(space + 1)
                    else
                        line

                body.StartsWith "---" || body.StartsWith "+++"

            let rec go acc lines =
                match lines with
                | [] -> Result.Ok(List.rev acc)
                | (n, line) :: rest when isNote line -> go acc rest
                | (n, line) :: rest ->
                    match runParserOnString call () "strace" line with
                    | Success((pid, name, args, result), _, _) ->
                        go
                            ({
                                Line = n
                                Pid = pid
                                Name = name
                                Args = args
                                Result = result
                             }
                             :: acc)
                            rest
                    | Failure(_, error, _) ->
                        let expected = Wal.Oracle.ParserMessage.expected error

                        Result.Error
                            {
                                Line = n
                                Column = int error.Position.Column
                                Message = expected |> String.map (fun c -> if c >= ' ' && c < '\x7f' then c else '?')
                            }

            go [] (joinResumed lines)
