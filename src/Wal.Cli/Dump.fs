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
                "read from the snapshot INDEX:TERM (default: the newest valid snapshot in snap/ that the WAL holds, else 0:0)."
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
                $"no snapshot: the WAL's snapshot records cannot be read ({e.Kind}); from 0:0"
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
            | null -> Wal.Snapshot.Zero, skipped @ [ "no valid snapshot in snap/ that the WAL holds; from 0:0" ]
            | found ->
                found.WalSnapshot,
                skipped
                @ [
                    $"snapshot {found.Index}:{found.Term} from snap/{found.FileName} (the newest valid one the WAL holds; {found.Data.Length} bytes; members {EtcdPayload.confState found.ConfState})"
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

/// What the records read so far say, for the summary after an error.
type private Seen =
    {
        Metadata: byte[] option
        State: HardState option
        LastEntry: Entry option
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

let private note (seen: Seen) (r: WalRecord) =
    try
        match r.Type with
        | RecordType.Metadata ->
            { seen with
                Metadata = Some(r.Data.ToArray())
            }
        | RecordType.State ->
            { seen with
                State = Some(r.ToHardState())
            }
        | RecordType.Entry ->
            { seen with
                LastEntry = Some(r.ToEntry())
            }
        | _ -> seen
    with :? WalException ->
        seen

let private summary (dump: ReadAllResult) =
    let entries =
        match List.ofSeq dump.Entries with
        | [] -> ""
        | es -> $" ({(List.head es).Index}..{(List.last es).Index})"

    $"term={dump.State.Term} vote={EtcdPayload.hexId dump.State.Vote} commit={dump.State.Commit}, {dump.Entries.Count} entries{entries}, metadata {EtcdPayload.metadata (dump.Metadata.ToArray())}"

/// What the records before an error said: never a line that reads like an empty log.
let private readBefore (records: int) (seen: Seen) =
    let state =
        match seen.State with
        | Some s -> $"last hard state term={s.Term} vote={EtcdPayload.hexId s.Vote} commit={s.Commit}"
        | None -> "no hard state"

    let entry =
        match seen.LastEntry with
        | Some e -> $"last entry {e.Index} (term {e.Term})"
        | None -> "no entry"

    let metadata =
        match seen.Metadata with
        | Some m -> $"metadata {EtcdPayload.metadata m}"
        | None -> "no metadata"

    $"read before the error: {records} records, {entry}, {state}, {metadata}"

let private table (options: WalOptions) (layout: Layout) (snapshot: Wal.Snapshot) (raw: bool) (filter: Filter) =
    printfn "%-6s %10s  %-8s %8s %10s %8s  %s" "" "offset" "record" "term" "index" "bytes" "data"
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
                seen <- note seen r

                match describe raw filter r with
                | Some(term, index, text) ->
                    if r.Segment <> segment then
                        segment <- r.Segment
                        printfn "%s" segment

                    shown <- shown + 1

                    printfn
                        "%-6s %10d  %-8s %8s %10s %8d  %s"
                        ""
                        r.Offset
                        (typeName r.Type)
                        term
                        index
                        r.Data.Length
                        text
                | None -> ()

            None
        with :? WalException as e when (osReason e).IsNone ->
            Some e

    if filter.IsSet then
        printfn "%d records, %d entries shown" records shown
    else
        printfn "%d records" records

    match problem with
    | Some e -> printfn "stops: %O: %s" e.Kind e.Message
    | None -> ()

    let readAll =
        try
            use wal = WriteAheadLog.OpenForRead(layout.Wal, snapshot, options)
            Ok(wal.ReadAll())
        with :? WalException as e when (osReason e).IsNone ->
            Error e

    let at = $"ReadAll at snapshot {snapshot.Index}:{snapshot.Term}"

    match readAll with
    | Ok contents ->
        printfn "%s: %s" at (summary contents)

        match problem with
        | Some e when e.Kind = WalErrorKind.UnexpectedEof ->
            printfn
                "the last record is torn: `wal repair` would cut it (etcd's ReadAll and Verify accept it; the entries above are all it holds)"

            Exit.walProblem
        | Some _ -> Exit.walProblem
        | None -> Exit.ok
    | Error e when e.Kind = WalErrorKind.SnapshotNotFound && e.Contents.HasValue ->
        printfn "%s: %s" at (summary e.Contents.Value)
        fail Exit.walProblem $"ReadAll: SnapshotNotFound: {e.Message} (the contents above were read all the same)"
    | Error e ->
        printfn "%s fails: %O: %s" at e.Kind e.Message
        printfn "%s" (readBefore records seen)

        if e.Kind = WalErrorKind.UnexpectedEof then
            printfn "the last record is torn: `wal repair` would cut it (etcd's Verify accepts it)"

        fail Exit.walProblem $"ReadAll: {e.Kind}"

/// `wal dump DIR [--snapshot INDEX:TERM] [--start-index N] [--end-index N] [--type K,...] [--raw] [--json] [--lenient]`.
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
        let dump = EngineReadAll.readWith options layout.Wal snapshot false
        printfn "%s" (ReadAllJson.render dump)

        match dump.Error with
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
