/// Traces: what a WAL implementation was asked to do and what it was seen to return, one step
/// per line, in a small text language (docs/traces.md has the grammar). Any implementation can
/// record one; `check` replays it on the model and says whether every observation is allowed.
///
///   create "node-1"
///   save 1/1/0 [1/1 "put a", 1/2 0x00ff]
///   snapshot 2/1
///   crash
///   open 0/0 -> read "node-1" 1/1/0 [1/1 "put a"]
module Wal.Oracle.Trace

open System
open System.Text
open FParsec
open Wal.Model

/// What an implementation returned when a log was opened and read.
type Observation =
    /// An outcome the model knows: contents, contents with SnapshotNotFound, a known error, no log.
    | Saw of ReadOutcome
    /// An error the model does not know (CrcMismatch, CorruptRecord, an I/O error, ...).
    | SawError of kind: string

/// A step of a trace (Wal.Model's vocabulary), the line it stands on and, for an open, what
/// was seen when the trace recorded it. Every operation but an open is acknowledged.
type Line =
    {
        Number: int
        Step: Step
        Observed: Observation option
    }

/// Where a trace cannot be read, and why.
type ParseError =
    {
        Line: int64
        Column: int64
        Message: string
    }

    override this.ToString() =
        $"line {this.Line}, column {this.Column}: {this.Message}"

/// The first observation the model does not allow, or a step that makes no sense where it stands.
type Violation =
    | Disallowed of line: int * observed: Observation * allowed: ReadOutcome list
    | Misplaced of line: int * reason: string

/// The result of checking a trace against the model.
type Verdict =
    | Allowed of observations: int
    | Violated of Violation

// ---- printing

let private quoteBytes (bytes: byte[]) =
    let printable =
        bytes
        |> Array.forall (fun b -> b >= 0x20uy && b < 0x7fuy && b <> byte '"' && b <> byte '\\')

    if printable then
        "\"" + Encoding.ASCII.GetString bytes + "\""
    else
        "0x" + Convert.ToHexString(bytes).ToLowerInvariant()

let private printEntry (e: Entry) =
    let kind = if e.Kind = 0 then "" else $" kind={e.Kind}"
    $"{e.Term}/{e.Index}{kind} {quoteBytes e.Data}"

let private printEntries (entries: Entry list) =
    "[" + String.Join(", ", entries |> List.map printEntry) + "]"

let private printContents (c: Contents) =
    $"{quoteBytes c.Metadata} {c.State.Term}/{c.State.Vote}/{c.State.Commit} {printEntries c.Entries}"

/// An observation in the trace language.
let printObservation (observation: Observation) =
    match observation with
    | Saw(Read c) -> "read " + printContents c
    | Saw(NotFound c) -> "not-found " + printContents c
    | Saw(Failed kind) -> $"error {kind}"
    | Saw NoLog -> "no-log"
    | SawError kind -> $"error {kind}"

/// Whether the trace language holds a step: all but a second reader beside the writer and a
/// Repair, which a run on a cleanly closed log leaves no trace of (it finds nothing to cut).
let holds (step: Step) =
    match step with
    | Do(OpenForRead _)
    | Do Repair -> false
    | _ -> true

/// A step as one line of the trace language, with what an open saw when it was recorded.
let printStep (step: Step) (observed: Observation option) =
    match step, observed with
    | Do(Create m), _ -> $"create {quoteBytes m}"
    | Do(Save(s, [])), _ -> $"save {s.Term}/{s.Vote}/{s.Commit}"
    | Do(Save(s, es)), _ -> $"save {s.Term}/{s.Vote}/{s.Commit} {printEntries es}"
    | Do(SaveSnapshot s), _ -> $"snapshot {s.Index}/{s.Term}"
    | Do Sync, _ -> "sync"
    | Do(ReleaseLockTo i), _ -> $"release-lock-to {i}"
    | Do Close, _ -> "close"
    | Do(Open at), None -> $"open {at.Index}/{at.Term}"
    | Do(Open at), Some o -> $"open {at.Index}/{at.Term} -> {printObservation o}"
    | Do(OpenForRead _ | Repair as other), _ ->
        invalidArg "step" $"not in the trace language: {Operation.describe other}"
    | Happen(PowerLoss None), _ -> "crash"
    | Happen(PowerLoss(Some image)), _ -> $"crash {image}"

/// A trace's lines, with what every open saw.
let printLines (lines: Line seq) =
    String.Join("\n", lines |> Seq.map (fun l -> printStep l.Step l.Observed))
    + "\n"

/// The steps of a run as a trace, one per line, without observations; steps the language does
/// not hold (see `holds`) are left out.
let print (steps: Step seq) =
    String.Join("\n", steps |> Seq.filter holds |> Seq.map (fun s -> printStep s None))
    + "\n"

// ---- parsing

/// Traces come from elsewhere: these bound what reading one may cost.
[<RequireQualifiedAccess>]
module Limits =
    /// The largest trace file read, in bytes.
    let traceBytes = 64L * 1024L * 1024L
    /// The longest line, in characters.
    let lineChars = 4 * 1024 * 1024

type private P<'T> = Parser<'T, unit>

let private ws: P<unit> = skipManySatisfy (fun c -> c = ' ' || c = '\t')

let private token (s: string) : P<unit> = skipString s >>. ws

let private number: P<uint64> =
    many1Satisfy isDigit <?> "a number"
    >>= fun digits ->
        match UInt64.TryParse digits with
        | true, n -> preturn n
        | _ -> fail "a number below 2^64"

let private smallNumber: P<int> =
    number
    >>= fun n ->
        if n <= uint64 Int32.MaxValue then
            preturn (int n)
        else
            fail "a number below 2^31"

let private hexBytes: P<byte[]> =
    skipString "0x" >>. manySatisfy isHex
    >>= fun digits ->
        if digits.Length % 2 = 0 then
            preturn (Convert.FromHexString digits)
        else
            fail "an even number of hex digits"

let private quotedBytes: P<byte[]> =
    let plain =
        manySatisfy (fun c -> c <> '"' && c <> '\\' && c <> '\n' && c >= ' ' && c < '\x7f')

    let escape =
        skipChar '\\'
        >>. choice
                [
                    skipChar '"' >>% "\""
                    skipChar '\\' >>% "\\"
                    skipChar 'n' >>% "\n"
                    skipChar 't' >>% "\t"
                    skipChar 'x'
                    >>. (anyOf "0123456789abcdefABCDEF" .>>. anyOf "0123456789abcdefABCDEF")
                    |>> fun (a, b) -> string (char (Convert.ToByte(string a + string b, 16)))
                ]
        <?> "an escape (\\\" \\\\ \\n \\t \\xHH)"

    between (skipChar '"') (skipChar '"' <?> "a closing quote") (stringsSepBy plain escape)
    |>> fun s -> s |> Seq.map byte |> Array.ofSeq

let private bytesLiteral: P<byte[]> =
    (hexBytes <|> quotedBytes) .>> ws <?> "bytes (\"text\" or 0xhex)"

let private slash: P<unit> = skipChar '/'

let private snapshotP: P<Snapshot> =
    number .>> slash .>>. number .>> ws |>> fun (i, t) -> { Index = i; Term = t }
    <?> "a snapshot INDEX/TERM"

let private hardStateP: P<HardState> =
    pipe3 (number .>> slash) (number .>> slash) number (fun t v c -> { Term = t; Vote = v; Commit = c })
    .>> ws
    <?> "a hard state TERM/VOTE/COMMIT"

let private entryP: P<Entry> =
    pipe4
        (number .>> slash)
        (number .>> ws)
        (opt (skipString "kind=" >>. smallNumber .>> ws))
        bytesLiteral
        (fun t i kind data ->
            {
                Term = t
                Index = i
                Kind = defaultArg kind 0
                Data = data
            })
    <?> "an entry TERM/INDEX [kind=K] DATA"

let private entriesP: P<Entry list> =
    between (token "[") (token "]" <?> "']'") (sepBy entryP (token ","))

let private contentsP: P<Contents> =
    pipe3 bytesLiteral hardStateP entriesP (fun m s es ->
        {
            Metadata = m
            State = s
            Entries = es
        })

let private kindName: P<string> =
    many1Satisfy2L Char.IsLetter Char.IsLetterOrDigit "an error kind" .>> ws

let private observationP: P<Observation> =
    choice
        [
            token "read" >>. contentsP |>> (Read >> Saw)
            token "not-found" >>. contentsP |>> (NotFound >> Saw)
            token "no-log" >>% Saw NoLog
            token "error" >>. kindName
            |>> fun kind ->
                match kind with
                | "MetadataConflict" -> Saw(Failed MetadataConflict)
                | "SnapshotMismatch" -> Saw(Failed SnapshotMismatch)
                | "SliceOutOfRange" -> Saw(Failed SliceOutOfRange)
                | other -> SawError other
        ]
    <?> "an observation (read, not-found, error KIND, no-log)"

let private stepP: P<Step * Observation option> =
    let unobserved step = step, None

    choice
        [
            token "create" >>. bytesLiteral |>> (Create >> Do >> unobserved)
            token "save" >>. hardStateP .>>. opt entriesP
            |>> fun (s, es) -> unobserved (Do(Save(s, defaultArg es [])))
            token "snapshot" >>. snapshotP |>> (SaveSnapshot >> Do >> unobserved)
            token "sync" >>% unobserved (Do Sync)
            token "release-lock-to" >>. number .>> ws
            |>> (ReleaseLockTo >> Do >> unobserved)
            token "close" >>% unobserved (Do Close)
            token "crash" >>. opt (smallNumber .>> ws)
            |>> (PowerLoss >> Happen >> unobserved)
            token "open" >>. snapshotP .>>. opt (token "->" >>. observationP)
            |>> fun (at, observed) -> Do(Open at), observed
        ]
    <?> "a step (create, save, snapshot, sync, release-lock-to, close, crash, open)"

let private comment: P<unit> = skipChar '#' >>. skipManySatisfy (fun c -> c <> '\n')

let private endOfLine: P<unit> =
    ws >>. optional comment >>. (skipNewline <|> eof) <?> "the end of the line"

let private lineP: P<Line option> =
    ws >>. getPosition
    >>= fun pos ->
        (endOfLine >>% None)
        <|> (stepP .>> endOfLine
             |>> fun (step, observed) ->
                 Some
                     {
                         Number = int pos.Line
                         Step = step
                         Observed = observed
                     })

let private traceP: P<Line list> =
    many (notFollowedBy eof >>. lineP) .>> eof |>> List.choose id

/// Control characters and non-ASCII shown as '?', so junk input makes a readable message.
let private printable (s: string) =
    s
    |> String.map (fun c -> if c = '\n' || (c >= ' ' && c < '\x7f') then c else '?')

/// Reads a trace. Untrusted input is fine: numbers beyond 64 bits, over-long lines and binary
/// junk are errors with a line, a column and what was expected there.
let parse (text: string) : Result<Line list, ParseError> =
    let tooLong =
        text.Split('\n')
        |> Array.tryFindIndex (fun line -> line.Length > Limits.lineChars)

    match tooLong with
    | Some i ->
        Result.Error
            {
                Line = int64 (i + 1)
                Column = int64 Limits.lineChars
                Message = $"the line is longer than {Limits.lineChars} characters"
            }
    | None ->
        match runParserOnString traceP () "trace" text with
        | Success(lines, _, _) -> Result.Ok lines
        | Failure(_, error, _) ->
            let expected = ParserMessage.expected error

            Result.Error
                {
                    Line = error.Position.Line
                    Column = error.Position.Column
                    Message = printable (expected.Trim())
                }

// ---- checking

/// After an open at `at` whose result is not recorded: any candidate may be what the disk held.
/// Under the raft contract the implementation knows the hard state it read, which is known here
/// only when every candidate reads the same one; otherwise the model compares with the empty
/// state, the stricter choice.
let private unobserved (at: Snapshot) (log: DurableLog) =
    let bases =
        Durability.candidates log
        |> List.filter (fun r -> not r.IsEmpty)
        |> List.distinct

    if bases.IsEmpty then
        Durability.empty log.Rule
    else
        let known =
            match
                bases
                |> List.map (fun records ->
                    match Stream.readAll at records with
                    | Read c
                    | NotFound c -> Some c.State
                    | _ -> None)
                |> List.distinct
            with
            | [ Some state ] when log.Rule = DurabilityRule.RaftContract -> state
            | _ -> HardState.empty

        { Durability.empty log.Rule with
            Bases = bases
            Created = true
            SessionState = known
        }

type private State =
    {
        Log: DurableLog
        IsOpen: bool
        Observations: int
    }

/// Replays a trace on the model: every recorded observation must be one the model allows given
/// what was acknowledged before it (and, after a crash, anything a crash may keep), with `rule`
/// saying which Saves must be durable.
let checkWith (rule: DurabilityRule) (lines: Line list) : Verdict =
    let rec go (state: State) (lines: Line list) =
        match lines with
        | [] -> Allowed state.Observations
        | line :: rest ->
            let misplaced reason =
                Violated(Misplaced(line.Number, reason))

            match line.Step, line.Observed with
            | Do(Create _), _ when state.Log.Created && state.IsOpen ->
                misplaced "create on a log that exists and is open"
            | Do(Create _ as op), _ ->
                go
                    { state with
                        Log = Durability.acknowledged state.Log op
                        IsOpen = true
                    }
                    rest
            | Do(Save _ | SaveSnapshot _ | Sync | ReleaseLockTo _ | OpenForRead _ | Repair), _ when not state.IsOpen ->
                misplaced $"{printStep line.Step None} on a log that is not open (open it after a close or a crash)"
            | Do(Save _ | SaveSnapshot _ | Sync | ReleaseLockTo _ | OpenForRead _ | Repair as op), _ ->
                go
                    { state with
                        Log = Durability.acknowledged state.Log op
                    }
                    rest
            | Do Close, _ ->
                go
                    { state with
                        Log = Durability.synced state.Log
                        IsOpen = false
                    }
                    rest
            | Happen(PowerLoss _), _ -> go { state with IsOpen = false } rest
            | Do(Open _), _ when state.IsOpen -> misplaced "open of a log that is already open (close it first)"
            | Do(Open at), None ->
                go
                    { state with
                        Log = unobserved at state.Log
                        IsOpen = state.Log.Created
                    }
                    rest
            | Do(Open at), Some observed ->
                let allowed = Durability.allowedAfterCrash at state.Log

                match observed with
                | Saw outcome when List.contains outcome allowed ->
                    match Durability.recovered at outcome state.Log with
                    | Some next ->
                        go
                            {
                                Log = next
                                IsOpen = outcome <> NoLog
                                Observations = state.Observations + 1
                            }
                            rest
                    | None -> Violated(Disallowed(line.Number, observed, allowed))
                | _ -> Violated(Disallowed(line.Number, observed, allowed))

    go
        {
            Log = Durability.empty rule
            IsOpen = false
            Observations = 0
        }
        lines

/// `checkWith` under raft's contract, the default for any implementation: a Save must be durable
/// when it has entries or changes the term or vote against the last hard state saved or read.
let check (lines: Line list) : Verdict =
    checkWith DurabilityRule.RaftContract lines

/// A verdict as a person reads it.
let describe (verdict: Verdict) =
    match verdict with
    | Allowed n -> $"ok: all {n} observations are allowed by the model"
    | Violated(Misplaced(line, reason)) -> $"line {line}: {reason}"
    | Violated(Disallowed(line, observed, allowed)) ->
        let choices =
            allowed
            |> List.map (fun o -> "  " + printObservation (Saw o))
            |> String.concat "\n"

        $"line {line}: the model does not allow\n  {printObservation observed}\nit allows\n{choices}"
