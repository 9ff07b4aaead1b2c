/// `wal check-dir DIR`: every invariant an etcd-format WAL directory breaks, found by Wal.Model's
/// reference decoder (independent of the engine's).
module Wal.Cli.CheckDir

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
    let names = Directory.GetFiles dir |> Array.map Path.GetFileName |> List.ofArray

    let size name =
        FileInfo(Path.Combine(dir, name)).Length

    let read name =
        File.ReadAllBytes(Path.Combine(dir, name))

    let problems = DirectoryCheck.check names size read
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
