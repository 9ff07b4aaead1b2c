/// What the commands share (exit codes, one-line errors, INDEX/TERM, the checks on DIR), and
/// `wal verify` and `wal repair`. Exit codes: 0 the WAL is fine (or was repaired), 1 the WAL has
/// a problem the message names, 2 the command line is wrong or the directory cannot be read
/// (a permission or I/O error, with the OS's reason).
module Wal.Cli.Commands

open System
open System.IO
open Argu
open Wal

/// Exit codes a script can test.
[<RequireQualifiedAccess>]
module Exit =
    let ok = 0
    let walProblem = 1
    let usage = 2

/// `--lenient`'s help, for dump and verify.
let lenientUsage =
    "read as etcd 3.4 does, without raft's invariants as a second checksum (a record raft never writes is then read, not reported)."

type VerifyArgs =
    | [<MainCommand; ExactlyOnce>] Dir of dir: string
    | [<Unique>] Snapshot of snapshot: string
    | Lenient

    interface IArgParserTemplate with
        member this.Usage =
            match this with
            | Dir _ -> "the WAL directory."
            | Snapshot _ -> "the snapshot INDEX/TERM the WAL must hold (default 0/0)."
            | Lenient -> lenientUsage

type RepairArgs =
    | [<MainCommand; ExactlyOnce>] Dir of dir: string

    interface IArgParserTemplate with
        member this.Usage =
            match this with
            | Dir _ -> "the WAL directory; no process may have it open for writing."

/// A one-line complaint and the exit code that goes with it.
exception CommandError of message: string * code: int

/// Stops the command with a one-line complaint and its exit code.
let fail code message = raise (CommandError(message, code))

/// INDEX/TERM, both unsigned 64-bit decimals, as the traces write a snapshot; INDEX:TERM, the
/// spelling before 0.2.0, reads the same.
let parseSnapshot (text: string) =
    match text.Split([| '/'; ':' |]) with
    | [| i; t |] ->
        match UInt64.TryParse i, UInt64.TryParse t with
        | (true, index), (true, term) -> Wal.Snapshot(index, term)
        | _ -> fail Exit.usage $"--snapshot must be INDEX/TERM with two unsigned numbers, not '{text}'"
    | _ -> fail Exit.usage $"--snapshot must be INDEX/TERM, not '{text}'"

/// The OS's reason when `e` (or an exception inside it) is a permission or I/O error, not a
/// problem of the WAL's bytes or names: a missing file and a path that is not a regular file
/// are the WAL's problems; "Permission denied", "Input/output error" are the disk's.
let rec osReason (e: exn) : string option =
    match e with
    | null -> None
    | :? WalException as w when w.Kind = WalErrorKind.NotRegularFile -> None
    | :? WalException as w -> osReason w.InnerException
    | :? Wal.Storage.NotRegularFileException
    | :? FileNotFoundException
    | :? DirectoryNotFoundException -> None
    | :? UnauthorizedAccessException as u ->
        // .NET words EACCES as "Access to the path ... is denied."; the OS says "Permission denied".
        Some(
            match u.InnerException with
            | null -> $"{u.Message} (Permission denied)"
            | inner -> $"{u.Message} ({inner.Message})"
        )
    | :? IOException as io -> Some io.Message
    | _ -> osReason e.InnerException

/// A message with the OS's reason after it, unless it already says it.
let withReason (message: string) (reason: string) =
    if message.Contains reason then
        message
    else
        $"{message} ({reason})"

/// The directory must exist, be a directory and be readable; anything else is the caller's
/// mistake or the disk's (exit 2), not the WAL's.
let checkDirectory (dir: string) =
    if File.Exists dir then
        fail Exit.usage $"{dir} is a file; give the WAL's directory (etcd's member/wal)"
    elif not (Directory.Exists dir) then
        fail Exit.usage $"{dir}: no such directory"

    try
        Directory.EnumerateFileSystemEntries dir |> Seq.iter ignore
    with e ->
        match osReason e with
        | Some reason -> fail Exit.usage $"cannot read {dir}: {reason}"
        | None -> reraise ()

/// `--snapshot`, or the zero snapshot.
let snapshotOf (arg: string option) =
    arg |> Option.map parseSnapshot |> Option.defaultValue Wal.Snapshot.Zero

/// A WAL error as the command's one-line complaint: exit 2 with the OS's reason for permission
/// and I/O errors, exit 1 naming the kind for everything else.
let walError (e: WalException) =
    match osReason e with
    | Some reason -> fail Exit.usage $"{e.Kind}: {withReason e.Message reason}"
    | None -> fail Exit.walProblem $"{e.Kind}: {e.Message}"

/// The last segment's torn record, if any: where a reader stops with UnexpectedEof (what etcd's
/// Verify accepts and `wal repair` cuts). Only the last segment is read.
let tornTail (dir: string) =
    let last =
        Directory.GetFiles(dir, "*.wal")
        |> Array.map Path.GetFileName
        |> Array.filter (fun n -> n.Length = 37 && n[16] = '-')
        |> Array.sortWith (fun a b -> String.CompareOrdinal(a, b))
        |> Array.tryLast

    match last with
    | None -> None
    | Some name ->
        match UInt64.TryParse(name.Substring(17, 16), Globalization.NumberStyles.HexNumber, null) with
        | true, index ->
            try
                WalDirectory.Scan(dir, Wal.Snapshot(index, 0UL)) |> Seq.iter ignore
                None
            with :? WalException as e when e.Kind = WalErrorKind.UnexpectedEof ->
                Some e.Message
        | _ -> None

/// `wal verify DIR [--snapshot INDEX/TERM] [--lenient]`: etcd's Verify, read-only.
let verify (args: ParseResults<VerifyArgs>) =
    let dir = args.GetResult VerifyArgs.Dir
    let snapshot = snapshotOf (args.TryGetResult VerifyArgs.Snapshot)
    checkDirectory dir

    try
        let options =
            if args.Contains VerifyArgs.Lenient then
                Wal.Simulation.EngineReadAll.lenient
            else
                WalOptions.Default

        let state = WalDirectory.Verify(dir, snapshot, options)

        printfn
            "ok: the CRC chain, metadata and snapshot %d:%d check out; last hard state term=%d vote=%s commit=%d"
            snapshot.Index
            snapshot.Term
            state.Term
            (EtcdPayload.hexId state.Vote)
            state.Commit

        match tornTail dir with
        | Some where ->
            printfn
                "ok for etcd's Verify; the last record is torn (%s), `wal repair` would cut it; `wal dump` and `wal check-dir` report it as an error"
                where
        | None -> ()

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
        match osReason e with
        | Some reason -> fail Exit.usage $"cannot repair ({e.Kind}): {withReason e.Message reason}"
        | None -> fail Exit.walProblem $"cannot repair ({e.Kind}): {e.Message}"
