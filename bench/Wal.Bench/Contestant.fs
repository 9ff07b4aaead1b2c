/// The contestants of a write workload, each run in a process of its own (so that none inherits
/// another's heap, JIT state or background threads) on a fresh directory under the temp path.
namespace Wal.Bench

open System
open System.Diagnostics
open System.IO

type Contestant =
    | Engine
    /// The engine with WalOptions.ZeroAheadBytes = 0, writing its space as etcd does: shown
    /// beside the default, never judged.
    | NoZeroAhead
    | Etcd
    | RawLoop
    | Faster
    | DotNext

[<RequireQualifiedAccess>]
module Contestant =

    /// Every contestant, in the rotation's forward order.
    let all = [ Engine; NoZeroAhead; Etcd; RawLoop; Faster; DotNext ]

    /// The table's column heading.
    let name =
        function
        | Engine -> "engine"
        | NoZeroAhead -> "engine, no zero-ahead"
        | Etcd -> "etcd 3.4"
        | RawLoop -> "raw loop"
        | Faster -> "FasterLog"
        | DotNext -> "DotNext WAL"

    /// The child command's name.
    let key =
        function
        | Engine -> "engine"
        | NoZeroAhead -> "engine-plain"
        | Etcd -> "etcd"
        | RawLoop -> "raw"
        | Faster -> "faster"
        | DotNext -> "dotnext"

    /// The contestant a child command names.
    let ofKey (k: string) =
        all
        |> List.tryFind (fun c -> key c = k)
        |> Option.defaultWith (fun () -> failwith $"unknown contestant {k}")

    /// A fresh directory for one run.
    let scratch (c: Contestant) =
        Path.Combine(Path.GetTempPath(), $"wal-bench-{key c}-{Guid.NewGuid():N}")

    /// This program's own command line for running one contestant's workload in a child.
    let childArguments (c: Contestant) (dir: string) (w: Workload) (bytesPerSave: int) (warmup: int) (scan: bool) =
        [
            "run"
            key c
            dir
            string w.EntriesPerSave
            string w.EntryBytes
            string w.Saves
            (if w.SyncPerSave then "sync" else "nosync")
            string bytesPerSave
            string warmup
            (if scan then "scan" else "noscan")
        ]

    /// The command that runs the contestant's workload: the peer for etcd, this program otherwise.
    let command
        (root: string)
        (c: Contestant)
        (dir: string)
        (w: Workload)
        (bytesPerSave: int)
        (warmup: int)
        (scan: bool)
        =
        match c with
        | Etcd -> EtcdRun.peer root, EtcdRun.arguments dir w warmup scan
        | _ -> Path.Combine(AppContext.BaseDirectory, "wal-bench"), childArguments c dir w bytesPerSave warmup scan

    /// syncfs on the file system the runs' directories are on. A run's deleted directory frees its
    /// blocks (and, mounted with discard, discards them) in a journal commit and a write-back that
    /// would otherwise land in the next contestant's first fdatasyncs, so whoever ran after a
    /// large writer paid for it; `wal-bench floor` settles each file the same way.
    let settle () =
        let fd = Libc.openFile (Path.GetTempPath(), Libc.O_RDONLY ||| Libc.O_CLOEXEC, 0)

        if fd >= 0 then
            try
                Libc.syncfs fd |> ignore
            finally
                Libc.close fd |> ignore

    /// Runs the contestant in its child process and reads its figures; None when the peer is not built.
    let run (root: string) (c: Contestant) (w: Workload) (bytesPerSave: int) (warmup: int) (scan: bool) =
        let dir = scratch c

        try
            match c with
            | Etcd -> EtcdRun.run root dir w warmup scan
            | _ ->
                let exe, args = command root c dir w bytesPerSave warmup scan
                let info = ProcessStartInfo(exe, args, RedirectStandardOutput = true)
                use proc = Process.Start info
                let out = proc.StandardOutput.ReadToEnd()
                proc.WaitForExit()

                if proc.ExitCode <> 0 then
                    failwith $"wal-bench run {key c} failed ({proc.ExitCode})"

                Some(Run.ofJson out)
        finally
            if Directory.Exists dir then
                Directory.Delete(dir, true)

            settle ()

    /// The child's side: runs the workload in this process.
    let runHere (c: Contestant) (dir: string) (w: Workload) (bytesPerSave: int) (warmup: int) (scan: bool) =
        match c with
        | Engine -> EngineRun.run dir w warmup scan
        | NoZeroAhead -> EngineRun.runWith (Wal.WalOptions(ZeroAheadBytes = 0)) dir w warmup scan
        | RawLoop -> RawLoop.run dir w bytesPerSave warmup
        | Faster -> FasterRun.run dir w warmup scan
        | DotNext -> DotNextRun.run dir w warmup scan
        | Etcd -> failwith "etcd runs in the peer"
