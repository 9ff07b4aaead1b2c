/// `wal dump`, `wal verify` and `wal repair`: etcd-format WAL directories from the command line.
/// Exit codes: 0 the WAL is fine (or was repaired), 1 the WAL has a problem the message names,
/// 2 the command line or the directory itself is wrong.
module Wal.Cli.Commands

open System
open System.IO
open System.Text
open Argu
open Wal
open Wal.Oracle
open Wal.Simulation

/// Exit codes a script can test.
[<RequireQualifiedAccess>]
module Exit =
    let ok = 0
    let walProblem = 1
    let usage = 2

let private lenientUsage =
    "read as etcd 3.4 does, without raft's invariants as a second checksum (a record raft never writes is then read, not reported)."

type DumpArgs =
    | [<MainCommand; ExactlyOnce>] Dir of dir: string
    | [<Unique>] Snapshot of snapshot: string
    | Json
    | Lenient

    interface IArgParserTemplate with
        member this.Usage =
            match this with
            | Dir _ -> "the WAL directory (etcd's member/wal)."
            | Snapshot _ -> "read from the snapshot INDEX:TERM (default 0:0)."
            | Json -> "print ReadAll as one line of JSON instead of the record table."
            | Lenient -> lenientUsage

type VerifyArgs =
    | [<MainCommand; ExactlyOnce>] Dir of dir: string
    | [<Unique>] Snapshot of snapshot: string
    | Lenient

    interface IArgParserTemplate with
        member this.Usage =
            match this with
            | Dir _ -> "the WAL directory."
            | Snapshot _ -> "the snapshot INDEX:TERM the WAL must hold (default 0:0)."
            | Lenient -> lenientUsage

type RepairArgs =
    | [<MainCommand; ExactlyOnce>] Dir of dir: string

    interface IArgParserTemplate with
        member this.Usage =
            match this with
            | Dir _ -> "the WAL directory; no process may have it open for writing."

/// A one-line complaint and the exit code that goes with it.
exception CommandError of message: string * code: int

let private fail code message = raise (CommandError(message, code))

/// INDEX:TERM, both unsigned 64-bit decimals.
let parseSnapshot (text: string) =
    match text.Split(':') with
    | [| i; t |] ->
        match UInt64.TryParse i, UInt64.TryParse t with
        | (true, index), (true, term) -> Wal.Snapshot(index, term)
        | _ -> fail Exit.usage $"--snapshot must be INDEX:TERM with two unsigned numbers, not '{text}'"
    | _ -> fail Exit.usage $"--snapshot must be INDEX:TERM, not '{text}'"

/// The directory must exist and be a directory; anything else is the caller's mistake, not the WAL's.
let checkDirectory (dir: string) =
    if File.Exists dir then
        fail Exit.usage $"{dir} is a file; give the WAL's directory (etcd's member/wal)"
    elif not (Directory.Exists dir) then
        fail Exit.usage $"{dir}: no such directory"

let private snapshotOf (arg: string option) =
    arg |> Option.map parseSnapshot |> Option.defaultValue Wal.Snapshot.Zero

let private walError (e: WalException) =
    fail Exit.walProblem $"{e.Kind}: {e.Message}"

// ---- dump ----

let private typeName (t: RecordType) =
    match t with
    | RecordType.Metadata -> "metadata"
    | RecordType.Entry -> "entry"
    | RecordType.State -> "state"
    | RecordType.Crc -> "crc"
    | RecordType.Snapshot -> "snapshot"
    | other -> $"type {int64 other}"

/// A short preview of a payload: text when it reads as text, hex otherwise.
let preview (data: ReadOnlySpan<byte>) =
    let max = 32
    let shown = data.Slice(0, min max data.Length)
    let more = if data.Length > max then "..." else ""

    if shown.Length > 0 && shown.IndexOfAnyExceptInRange(0x20uy, 0x7euy) < 0 then
        "\"" + Encoding.ASCII.GetString shown + "\"" + more
    else
        Convert.ToHexString(shown).ToLowerInvariant() + more

let private describe (r: WalRecord) =
    let data = r.Data.Span

    match r.Type with
    | RecordType.Entry ->
        let e = r.ToEntry()
        let kind = if e.Type = EntryType.ConfChange then "conf" else "norm"
        string e.Term, string e.Index, $"{kind} {preview e.Data.Span}"
    | RecordType.State ->
        let s = r.ToHardState()
        string s.Term, "", $"vote={s.Vote} commit={s.Commit}"
    | RecordType.Snapshot ->
        let s = r.ToSnapshot()
        string s.Term, string s.Index, (if isNull s.ConfState then "" else $"{s.ConfState}")
    | RecordType.Crc -> "", "", $"crc={r.Crc:x8}"
    | _ -> "", "", preview data

let private dumpTable (options: WalOptions) (dir: string) (snapshot: Wal.Snapshot) =
    if not (WalDirectory.Exists dir) then
        fail Exit.walProblem $"FileNotFound: {dir} holds no WAL segments (*.wal)"

    printfn "%-6s %10s  %-8s %8s %10s %8s  %s" "" "offset" "record" "term" "index" "bytes" "data"
    let mutable segment = ""
    let mutable records = 0

    let problem =
        try
            for r in WalDirectory.Scan(dir, options) do
                if r.Segment <> segment then
                    segment <- r.Segment
                    printfn "%s" segment

                let term, index, text = describe r

                printfn "%-6s %10d  %-8s %8s %10s %8d  %s" "" r.Offset (typeName r.Type) term index r.Data.Length text
                records <- records + 1

            None
        with :? WalException as e ->
            Some e

    printfn "%d records" records

    match problem with
    | Some e -> printfn "stops: %O: %s" e.Kind e.Message
    | None -> ()

    let dump = EngineReadAll.readWith options dir snapshot false

    printfn
        "ReadAll at snapshot %d:%d: term=%d vote=%d commit=%d, %d entries%s, metadata %s"
        dump.SnapIndex
        dump.SnapTerm
        dump.Term
        dump.Vote
        dump.Commit
        dump.Entries.Length
        (match dump.Entries with
         | [] -> ""
         | es -> $" ({(List.head es).Index}..{(List.last es).Index})")
        (preview (ReadOnlySpan dump.Metadata))

    match dump.Error with
    | Some kind -> fail Exit.walProblem $"ReadAll: {kind}"
    | None when problem.IsSome -> Exit.walProblem
    | None -> Exit.ok

/// `wal dump DIR [--snapshot INDEX:TERM] [--json]`: never changes the directory.
let dump (args: ParseResults<DumpArgs>) =
    let dir = args.GetResult DumpArgs.Dir
    let snapshot = snapshotOf (args.TryGetResult DumpArgs.Snapshot)
    checkDirectory dir

    let options =
        if args.Contains DumpArgs.Lenient then
            EngineReadAll.lenient
        else
            WalOptions.Default

    if args.Contains Json then
        let dump = EngineReadAll.readWith options dir snapshot false
        printfn "%s" (ReadAllJson.render dump)

        match dump.Error with
        | None -> Exit.ok
        | Some kind ->
            eprintfn "wal: ReadAll: %s" kind
            Exit.walProblem
    else
        dumpTable options dir snapshot

/// `wal verify DIR [--snapshot INDEX:TERM]`: etcd's Verify, read-only.
let verify (args: ParseResults<VerifyArgs>) =
    let dir = args.GetResult VerifyArgs.Dir
    let snapshot = snapshotOf (args.TryGetResult VerifyArgs.Snapshot)
    checkDirectory dir

    try
        let options =
            if args.Contains VerifyArgs.Lenient then
                EngineReadAll.lenient
            else
                WalOptions.Default

        let state = WalDirectory.Verify(dir, snapshot, options)

        printfn
            "ok: the CRC chain, metadata and snapshot %d:%d check out; last hard state term=%d vote=%d commit=%d"
            snapshot.Index
            snapshot.Term
            state.Term
            state.Vote
            state.Commit

        Exit.ok
    with :? WalException as e ->
        walError e

/// `wal repair DIR`: etcd's Repair; cuts a torn last record off, keeping a *.broken copy.
let repair (args: ParseResults<RepairArgs>) =
    let dir = args.GetResult RepairArgs.Dir
    checkDirectory dir

    try
        match WalDirectory.Repair dir with
        | RepairOutcome.Repaired ->
            printfn "repaired: the torn last record was cut off; the segment as it was is kept as *.wal.broken"
            Exit.ok
        | _ ->
            printfn "nothing to repair: the last segment ends cleanly"
            Exit.ok
    with :? WalException as e ->
        fail Exit.walProblem $"cannot repair ({e.Kind}): {e.Message}"
