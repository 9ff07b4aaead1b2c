/// `wal check-dir DIR`: every invariant an etcd-format WAL directory breaks, found by Wal.Model's
/// reference decoder (independent of the engine's).
module Wal.Cli.CheckDir

open System
open System.IO
open Argu
open Wal.Model
open Wal.Cli.Commands

type CheckDirArgs =
    | [<MainCommand; ExactlyOnce>] Dir of dir: string

    interface IArgParserTemplate with
        member this.Usage =
            match this with
            | Dir _ -> "the WAL directory (etcd's member/wal)."

/// 0 when no invariant is broken (warnings aside), 1 when one is, 2 when DIR is not a directory.
let run (args: ParseResults<CheckDirArgs>) =
    let dir = args.GetResult Dir
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

    let names = entries |> List.map fst

    let size name =
        use file = fs.OpenFile(Path.Combine(dir, name), Wal.Storage.OpenMode.Read)
        file.Length

    let read name =
        use file = fs.OpenFile(Path.Combine(dir, name), Wal.Storage.OpenMode.Read)

        let bytes =
            Array.zeroCreate<byte>(int (min file.Length DirectoryCheck.maxSegmentBytes))

        let n = file.Read(0L, bytes.AsSpan())
        if n = bytes.Length then bytes else bytes[.. n - 1]

    let problems = DirectoryCheck.checkEntries entries size read
    let errors = problems |> List.filter (DirectoryCheck.isWarning >> not)

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
        errors.Length
        (problems.Length - errors.Length)

    if errors.IsEmpty then Exit.ok else Exit.walProblem
