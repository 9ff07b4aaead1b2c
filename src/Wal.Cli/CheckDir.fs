/// `wal check-dir DIR [--snapshot INDEX/TERM]`: every invariant an etcd-format WAL directory
/// breaks, found by Wal.Model's reference decoder (independent of the engine's); at a snapshot,
/// as a reader opened there sees the directory.
module Wal.Cli.CheckDir

open System
open System.IO
open Argu
open Wal.Model
open Wal.Cli.Commands

type CheckDirArgs =
    | [<MainCommand; ExactlyOnce>] Dir of dir: string
    | [<Unique>] Snapshot of snapshot: string

    interface IArgParserTemplate with
        member this.Usage =
            match this with
            | Dir _ -> "the WAL directory (etcd's member/wal)."
            | Snapshot _ ->
                "check from the snapshot INDEX/TERM: segments before the one holding it (which etcd may have removed) are left out, and the WAL must hold its snapshot record."

/// The segment names before those a reader opened at `index` reads (which start with the last
/// whose first index is at or below it). None when no segment covers the index.
let private segmentsBefore (index: uint64) (names: string list) =
    let parsed =
        names
        |> List.choose (fun n ->
            if n.EndsWith ".wal" && n.Length = 37 && n[16] = '-' then
                match UInt64.TryParse(n.Substring(17, 16), Globalization.NumberStyles.HexNumber, null) with
                | true, first -> Some(n, first)
                | _ -> None
            else
                None)
        |> List.sortBy fst

    match parsed |> List.tryFindIndexBack (fun (_, first) -> first <= index) with
    | Some i -> Some(parsed |> List.take i |> List.map fst)
    | None -> None

/// What a reader at the snapshot finds wrong before reading any record: no segment for it, or no
/// snapshot record matching it (the engine's Verify; the records' own problems are the model's).
let private snapshotProblems (dir: string) (snapshot: Wal.Snapshot) =
    try
        Wal.WalDirectory.Verify(dir, snapshot) |> ignore
        []
    with :? Wal.WalException as e when
        e.Kind = Wal.WalErrorKind.SnapshotNotFound
        || e.Kind = Wal.WalErrorKind.SnapshotMismatch
        || e.Kind = Wal.WalErrorKind.FileNotFound ->
        [ $"snapshot {snapshot.Index}/{snapshot.Term}: {e.Kind}: {e.Message}" ]

/// 0 when no invariant is broken (warnings aside), 1 when one is, 2 when DIR is not a directory.
let run (args: ParseResults<CheckDirArgs>) =
    let dir = args.GetResult Dir
    let snapshot = args.TryGetResult Snapshot |> Option.map parseSnapshot
    checkDirectory dir
    let fs = Wal.Storage.LinuxFileSystem.Instance

    // Every entry, directories and links included; the log's files are opened as the engine
    // opens them (never through a link, never a FIFO or device), and read no further than
    // their real size.
    let entries =
        Directory.GetFileSystemEntries dir
        |> Array.map (fun path ->
            let name = Path.GetFileName path

            let kind =
                if name.EndsWith ".wal" then
                    try
                        use _ = fs.OpenFile(path, Wal.Storage.OpenMode.Read)
                        DirectoryCheck.RegularFile
                    with :? Wal.Storage.NotRegularFileException as e ->
                        DirectoryCheck.NotRegular e.What
                else
                    DirectoryCheck.RegularFile

            name, kind)
        |> List.ofArray

    // At a snapshot, the segments before the one that holds it are not the reader's.
    let skipped =
        match snapshot with
        | Some s -> segmentsBefore s.Index (entries |> List.map fst) |> Option.defaultValue []
        | None -> []

    let entries = entries |> List.filter (fun (n, _) -> not (List.contains n skipped))
    let names = entries |> List.map fst

    let size name =
        use file = fs.OpenFile(Path.Combine(dir, name), Wal.Storage.OpenMode.Read)
        file.Length

    // The model holds one segment's bytes at a time (Segments.scan); the next is read ahead
    // into a second buffer, so memory stays at two segments whatever the log's size.
    use reader = new SegmentReadAhead.Reader(fs, dir, names)

    let problems = DirectoryCheck.checkEntries entries size reader.Read
    let errors = problems |> List.filter (DirectoryCheck.isWarning >> not)

    let atSnapshot =
        match snapshot with
        | Some s -> snapshotProblems dir s
        | None -> []

    match skipped with
    | [] -> ()
    | [ one ] -> printfn "at the snapshot: the earlier segment file %s is not checked" one
    | many ->
        printfn
            "at the snapshot: %d earlier segment files are not checked (%s..%s)"
            many.Length
            many.Head
            (List.last many)

    for p in atSnapshot do
        printfn "error:   %s" p

    for p in problems do
        printfn
            "%s %s"
            (if DirectoryCheck.isWarning p then
                 "warning:"
             else
                 "error:  ")
            (DirectoryCheck.describe p)

    let segments = names |> List.filter (fun n -> n.EndsWith ".wal") |> List.length

    printfn
        "%d segment files; %d broken invariants, %d warnings"
        segments
        (errors.Length + atSnapshot.Length)
        (problems.Length - errors.Length)

    if errors.IsEmpty && atSnapshot.IsEmpty then
        Exit.ok
    else
        Exit.walProblem
