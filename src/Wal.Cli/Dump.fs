/// `wal dump`: a WAL directory, or an etcd member directory (wal/ and snap/), record by record
/// with etcd's payloads decoded, from the newest snapshot the WAL holds; or its ReadAll as JSON.
/// Read-only: nothing in the directory changes, broken snapshot files included.
module Wal.Cli.Dump

open System
open System.IO
open Argu
open Wal
open Wal.Snap
open Wal.Oracle
open Wal.Simulation
open Wal.Cli.Commands

type DumpArgs =
    | [<MainCommand; ExactlyOnce>] Dir of dir: string
    | [<Unique>] Snapshot of snapshot: string
    | [<Unique>] Start_Index of index: uint64
    | [<Unique>] End_Index of index: uint64
    | [<CustomCommandLine("--type")>] Kinds of kinds: string
    | Raw
    | Json
    | Lenient

    interface IArgParserTemplate with
        member this.Usage =
            match this with
            | Dir _ ->
                "the WAL directory (etcd's member/wal), or an etcd member directory holding wal/ and snap/ (or a data directory holding member/)."
            | Snapshot _ ->
                "read from the snapshot INDEX/TERM (default: the newest valid snapshot in snap/ that the WAL holds, else 0/0)."
            | Start_Index _ -> "show only entries from this index on."
            | End_Index _ -> "show only entries up to this index."
            | Kinds _ ->
                $"""show only entries of these kinds, comma-separated: normal, conf, {String.Join(", ", EtcdPayload.requestKinds)}."""
            | Raw -> "show entry payloads as text or hex, undecoded."
            | Json -> "print ReadAll as one line of JSON instead of the record table."
            | Lenient -> lenientUsage

/// Where the WAL and the snapshots are: a WAL directory alone, or a member directory's two.
type Layout = { Wal: string; Snap: string option }

/// DIR as a WAL directory, a member directory (wal/ and snap/) or a data directory (member/).
let layoutOf (dir: string) =
    let isMember (d: string) =
        Directory.Exists(Path.Combine(d, "wal"))
        && Seq.isEmpty (Directory.EnumerateFiles(d, "*.wal"))

    let memberDir =
        if isMember dir then
            Some dir
        elif isMember (Path.Combine(dir, "member")) then
            Some(Path.Combine(dir, "member"))
        else
            None

    match memberDir with
    | Some m ->
        {
            Wal = Path.Combine(m, "wal")
            Snap = Some(Path.Combine(m, "snap"))
        }
    | None -> { Wal = dir; Snap = None }

/// The snapshot to start from, and lines saying how it was chosen.
let private startingPoint (layout: Layout) (given: string option) =
    match given, layout.Snap with
    | Some text, _ -> parseSnapshot text, [ $"snapshot {text} (--snapshot)" ]
    | None, None -> Wal.Snapshot.Zero, []
    | None, Some snapDir ->
        let search =
            try
                Ok(Snapshotter(snapDir).LoadNewestAvailable(layout.Wal, markBroken = false))
            with :? WalException as e ->
                Error e

        match search with
        | Error e when (osReason e).IsSome -> raise e
        | Error e ->
            Wal.Snapshot.Zero,
            [
                $"no snapshot: the WAL's snapshot records cannot be read ({e.Kind}); from 0/0"
            ]
        | Ok search ->
            let skipped =
                [
                    for s in search.Skipped ->
                        let why =
                            match s.Reason with
                            | SkipReason.Broken -> "broken"
                            | SkipReason.Unreadable -> "unreadable"
                            | _ -> "not in the WAL"

                        $"skipped snap/{s.FileName} ({why}): {s.Message}"
                ]

            match search.Snapshot with
            | null -> Wal.Snapshot.Zero, skipped @ [ "no valid snapshot in snap/ that the WAL holds; from 0/0" ]
            | found ->
                found.WalSnapshot,
                skipped
                @ [
                    $"snapshot {found.Index}/{found.Term} from snap/{found.FileName} (the newest valid one the WAL holds; {found.Data.Length} bytes; members {EtcdPayload.confState found.ConfState})"
                ]

/// Which entries the table shows.
type private Filter =
    {
        Start: uint64
        End: uint64
        Kinds: Set<string>
    }

    member f.IsSet = f.Start > 0UL || f.End < UInt64.MaxValue || not f.Kinds.IsEmpty

let private filterOf (args: ParseResults<DumpArgs>) =
    let known = Set.ofList ("normal" :: "conf" :: EtcdPayload.requestKinds)

    let kinds =
        args.GetResults Kinds
        |> List.collect (fun k ->
            k.Split(',', StringSplitOptions.RemoveEmptyEntries ||| StringSplitOptions.TrimEntries)
            |> List.ofArray)
        |> List.map (fun k -> k.ToLowerInvariant())

    match kinds |> List.filter (known.Contains >> not) with
    | [] -> ()
    | bad ->
        raise (CommandError($"""--type takes {String.Join(", ", known)}; not {String.Join(", ", bad)}""", Exit.usage))

    {
        Start = args.GetResult(Start_Index, defaultValue = 0UL)
        End = args.GetResult(End_Index, defaultValue = UInt64.MaxValue)
        Kinds = Set.ofList kinds
    }

let private shows (f: Filter) (e: Entry) (payload: EtcdPayload.Payload) =
    e.Index >= f.Start
    && e.Index <= f.End
    && (f.Kinds.IsEmpty
        || f.Kinds.Contains payload.Kind
        || (e.Type = EntryType.Normal && f.Kinds.Contains "normal")
        || (e.Type <> EntryType.Normal && f.Kinds.Contains "conf"))

let private typeName (t: RecordType) =
    match t with
    | RecordType.Metadata -> "metadata"
    | RecordType.Entry -> "entry"
    | RecordType.State -> "state"
    | RecordType.Crc -> "crc"
    | RecordType.Snapshot -> "snapshot"
    | other -> $"type {int64 other}"

/// What the records read so far say, for the summary after an error: the last record of each
/// kind, decoded only when the summary is printed.
type private Seen =
    {
        Metadata: WalRecord option
        State: WalRecord option
        LastEntry: WalRecord option
    }

/// The record's term, index and data columns, or None when the filter hides it.
let private describe (raw: bool) (filter: Filter) (r: WalRecord) =
    match r.Type with
    | RecordType.Entry ->
        let e = r.ToEntry()
        let payload = EtcdPayload.entry e
        let kind = if e.Type = EntryType.Normal then "norm" else "conf"

        let text =
            if raw then
                EtcdPayload.preview e.Data.Span
            else
                payload.Text

        if shows filter e payload then
            Some(string e.Term, string e.Index, $"{kind} {text}")
        else
            None
    | _ when filter.IsSet -> None
    | RecordType.State ->
        let s = r.ToHardState()
        Some(string s.Term, "", $"vote={EtcdPayload.hexId s.Vote} commit={s.Commit}")
    | RecordType.Snapshot ->
        let s = r.ToSnapshot()

        Some(
            string s.Term,
            string s.Index,
            (if isNull s.ConfState then
                 ""
             else
                 EtcdPayload.confState s.ConfState)
        )
    | RecordType.Metadata ->
        Some(
            "",
            "",
            (if raw then
                 EtcdPayload.preview r.Data.Span
             else
                 EtcdPayload.metadata (r.Data.ToArray()))
        )
    | RecordType.Crc -> Some("", "", $"crc={r.Crc:x8}")
    | _ -> Some("", "", EtcdPayload.preview r.Data.Span)

/// A record's payload, or None when it does not decode.
let private decoded (decode: WalRecord -> 'T) (r: WalRecord option) =
    r
    |> Option.bind (fun r ->
        try
            Some(decode r)
        with :? WalException ->
            None)

let private summary (survey: LogSurvey) =
    let entries =
        if survey.EntryCount = 0UL then
            ""
        else
            $" ({survey.Start.Index + 1UL}..{survey.LastIndex})"

    $"term={survey.State.Term} vote={EtcdPayload.hexId survey.State.Vote} commit={survey.State.Commit}, {survey.EntryCount} entries{entries}, metadata {EtcdPayload.metadata (survey.Metadata.ToArray())}"

let private note (seen: Seen) (r: WalRecord) =
    match r.Type with
    | RecordType.Metadata -> { seen with Metadata = Some r }
    // A state record that does not decode is not one the summary can name; an entry record
    // was decoded (to be shown) before it is noted.
    | RecordType.State when (decoded (fun r -> r.ToHardState()) (Some r)).IsSome -> { seen with State = Some r }
    | RecordType.Entry -> { seen with LastEntry = Some r }
    | _ -> seen

/// What the records before an error said: never a line that reads like an empty log.
let private readBefore (records: int) (seen: Seen) =
    let state =
        match decoded (fun r -> r.ToHardState()) seen.State with
        | Some s -> $"last hard state term={s.Term} vote={EtcdPayload.hexId s.Vote} commit={s.Commit}"
        | None -> "no hard state"

    let entry =
        match decoded (fun r -> r.ToEntry()) seen.LastEntry with
        | Some e -> $"last entry {e.Index} (term {e.Term})"
        | None -> "no entry"

    let metadata =
        match seen.Metadata with
        | Some m -> $"metadata {EtcdPayload.metadata (m.Data.ToArray())}"
        | None -> "no metadata"

    $"read before the error: {records} records, {entry}, {state}, {metadata}"

/// One row of the record table, as `%-6s %10d  %-8s %8s %10s %8d  %s` with an empty first
/// column, built without printf (a dump prints a row per record).
let private row (b: Text.StringBuilder) (r: WalRecord) (term: string) (index: string) (text: string) =
    let right (width: int) (s: string) =
        b.Append(' ', max 0 (width - s.Length)).Append(s) |> ignore

    b.Append(' ', 7) |> ignore
    right 10 (string r.Offset)

    b.Append("  ").Append(typeName r.Type).Append(' ', max 0 (8 - (typeName r.Type).Length)).Append(' ')
    |> ignore

    right 8 term
    b.Append(' ') |> ignore
    right 10 index
    b.Append(' ') |> ignore
    right 8 (string r.Data.Length)
    b.Append("  ").Append(text) |> ignore

/// ReadAll at the snapshot, as the summary needs it: in one read that keeps no entries.
let private survey (options: WalOptions) (layout: Layout) (snapshot: Wal.Snapshot) =
    try
        Ok(WalDirectory.Survey(layout.Wal, snapshot, options))
    with :? WalException as e when (osReason e).IsNone ->
        Error e

let private table (options: WalOptions) (layout: Layout) (snapshot: Wal.Snapshot) (raw: bool) (filter: Filter) =
    use out = new Output.Lines(Console.Out)
    out.Line(sprintf "%-6s %10s  %-8s %8s %10s %8s  %s" "" "offset" "record" "term" "index" "bytes" "data")
    let mutable segment = ""
    let mutable records = 0
    let mutable shown = 0

    let mutable seen =
        {
            Metadata = None
            State = None
            LastEntry = None
        }

    let problem =
        try
            for r in WalDirectory.Scan(layout.Wal, snapshot) do
                records <- records + 1

                match describe raw filter r with
                | Some(term, index, text) ->
                    if r.Segment <> segment then
                        segment <- r.Segment
                        out.Line segment

                    shown <- shown + 1
                    row out.Builder r term index text
                    out.EndLine()
                | None -> ()

                seen <- note seen r

            None
        with :? WalException as e when (osReason e).IsNone ->
            Some e

    if filter.IsSet then
        out.Line $"{records} records, {shown} entries shown"
    else
        out.Line $"{records} records"

    match problem with
    | Some e -> out.Line $"stops: {e.Kind}: {e.Message}"
    | None -> ()

    let readAll = survey options layout snapshot
    let at = $"ReadAll at snapshot {snapshot.Index}/{snapshot.Term}"

    match readAll with
    | Ok found when found.SnapshotFound ->
        out.Line $"{at}: {summary found}"

        match problem with
        | Some e when e.Kind = WalErrorKind.UnexpectedEof ->
            out.Line
                "the last record is torn: `wal repair` would cut it (etcd's ReadAll and Verify accept it; the entries above are all it holds)"

            Exit.walProblem
        | Some _ -> Exit.walProblem
        | None -> Exit.ok
    | Ok found ->
        out.Line $"{at}: {summary found}"
        out.Flush()

        fail
            Exit.walProblem
            $"ReadAll: SnapshotNotFound: The WAL holds no snapshot record at index {snapshot.Index}, term {snapshot.Term}. (the contents above were read all the same)"
    | Error e ->
        out.Line $"{at} fails: {e.Kind}: {e.Message}"
        out.Line(readBefore records seen)

        if e.Kind = WalErrorKind.UnexpectedEof then
            out.Line "the last record is torn: `wal repair` would cut it (etcd's Verify accepts it)"

        out.Flush()
        fail Exit.walProblem $"ReadAll: {e.Kind}"

/// ReadAll as one JSON document, written as it is read: a survey first (the fields before the
/// entries, and any error, which ReadAll reports before returning anything), then the entries
/// read again, in batches on a thread of their own (EntryBatches). Memory stays bounded whatever
/// the log's size.
let private json (options: WalOptions) (layout: Layout) (snapshot: Wal.Snapshot) =
    use out = new Output.JsonText()
    let w = out.Writer
    let empty = ReadAllJson.empty snapshot.Index snapshot.Term

    let error =
        try
            let found = WalDirectory.Survey(layout.Wal, snapshot, options)

            ReadAllJson.writeStart
                w
                { empty with
                    Metadata = found.Metadata.ToArray()
                    Term = found.State.Term
                    Vote = found.State.Vote
                    Commit = found.State.Commit
                }

            try
                // The entries are read on a thread of their own while those read before are
                // written: on two cores the two halves of the work overlap.
                EntryBatches.visit found (fun batch ->
                    for i in 0 .. batch.Count - 1 do
                        ReadAllJson.writeDumpEntry w (batch.Term i) (batch.Index i) (int (batch.Kind i)) (batch.Data i)
                        out.Written())

                if found.SnapshotFound then
                    None
                else
                    Some(string WalErrorKind.SnapshotNotFound)
            with :? WalException as e ->
                // The log changed under the second read: the entries written stay, the error says so.
                Some(string e.Kind)
        with :? WalException as e ->
            // ReadAll returns nothing beside an error other than SnapshotNotFound.
            ReadAllJson.writeStart w empty
            Some(string e.Kind)

    ReadAllJson.writeEnd w error
    out.Finish()
    error

/// `wal dump DIR [--snapshot INDEX/TERM] [--start-index N] [--end-index N] [--type K,...] [--raw] [--json] [--lenient]`.
let run (args: ParseResults<DumpArgs>) =
    let dir = args.GetResult Dir
    checkDirectory dir
    let layout = layoutOf dir

    // A member directory's wal/ must be readable too, or Exists would read as "no WAL".
    if layout.Wal <> dir then
        checkDirectory layout.Wal

    let filter = filterOf args

    let options =
        if args.Contains Lenient then
            EngineReadAll.lenient
        else
            WalOptions.Default
    // A malformed --snapshot is the command line's fault, whatever the directory holds.
    args.TryGetResult Snapshot |> Option.iter (parseSnapshot >> ignore)

    if not (WalDirectory.Exists layout.Wal) then
        fail Exit.walProblem $"FileNotFound: {layout.Wal} holds no WAL segments (*.wal)"

    if args.Contains Json then
        if filter.IsSet || args.Contains Raw then
            fail
                Exit.usage
                "--json prints ReadAll whole; --start-index, --end-index, --type and --raw are for the table"

        let snapshot, _ = startingPoint layout (args.TryGetResult Snapshot)

        match json options layout snapshot with
        | None -> Exit.ok
        | Some kind ->
            eprintfn "wal: ReadAll: %s" kind
            Exit.walProblem
    else
        let snapshot, lines = startingPoint layout (args.TryGetResult Snapshot)

        if layout.Snap.IsSome then
            printfn "member directory: WAL %s" layout.Wal

        for line in lines do
            printfn "%s" line

        table options layout snapshot (args.Contains Raw) filter
