/// etcd 3.4's wal on a write workload, through the peer's bench command (interop/etcd/peer/bench.go):
/// wal.Save per batch (fdatasync, MustSync), then OpenForRead and ReadAll; CPU from getrusage.
[<RequireQualifiedAccess>]
module Wal.Bench.EtcdRun

open System.Diagnostics
open System.IO

/// The peer, built by `dotnet fsi build.fsx peer` (the bench target builds it when Go is there).
let peer (root: string) =
    Path.Combine(root, "interop", "etcd", "bin", "etcd-peer")

/// The peer's command line for the workload.
let arguments (dir: string) (w: Workload) (warmup: int) (scan: bool) =
    [
        "bench"
        dir
        string w.EntriesPerSave
        string w.Saves
        string w.EntryBytes
        string warmup
        if scan then
            "scan"
    ]

/// Runs the workload in the peer; None when it is not built.
let run (root: string) (dir: string) (w: Workload) (warmup: int) (scan: bool) =
    let path = peer root

    if not (File.Exists path) then
        None
    else
        let info =
            ProcessStartInfo(path, arguments dir w warmup scan, RedirectStandardOutput = true)

        use proc = Process.Start info
        let out = proc.StandardOutput.ReadToEnd()
        proc.WaitForExit()

        if proc.ExitCode <> 0 then
            failwith $"etcd-peer bench failed ({proc.ExitCode})"

        Some(Run.ofJson out)
