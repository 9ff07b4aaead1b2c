// A recording replayed into the simulated disk: the calls, in order, applied to a DiskState as
// ALICE replays a trace, with the descriptor tables (per process, shared by threads and by dup'ed
// descriptors' file positions) kept as the kernel keeps them. The disk after every mutating call
// is kept, so crash images (CrashImage.fs) of any point can be enumerated later. The descriptor
// tables, positions, steps and answers are ReplayState.fs; this file applies the calls.
namespace Wal.Simulation

open System
open System.IO

/// Replaying recordings.
[<RequireQualifiedAccess>]
module Replay =
    // Linux x86-64 and arm64 open flags, as -X raw prints them.
    let private OCreat = 0x40L
    let private OTrunc = 0x200L
    let private OAppend = 0x400L
    let private ODsync = 0x1000L
    let private OTmpFile = 0x400000L
    let private AtRemoveDir = 0x200L
    let private CloneFiles = 0x400L
    let private RenameExchange = 2L
    let private RwfDsync = 2L
    let private RwfSync = 4L
    let private RwfAppend = 0x10L
    let private FallocKeepSize = 1L
    let private FallocPunchHole = 2L

    let private resolve (basePath: string) (path: string) =
        Path.GetFullPath(
            if path.StartsWith "/" then
                path
            else
                Path.Combine(basePath, path)
        )

    let private text (b: byte[]) = Text.Encoding.UTF8.GetString b

    let private namespaceOp (op: NamespaceOp) (disk: DiskState) =
        { disk with
            Current = NamespaceOp.apply disk.Current op
            PendingNamespace = disk.PendingNamespace @ [ op ]
        }

    let private dataOp (inode: int) (op: DataOp) (disk: DiskState) =
        let i = disk.Inodes[inode]

        { disk with
            Inodes =
                disk.Inodes.Add(
                    inode,
                    { i with
                        Current = Content.apply i.Current op
                        Pending = op :: i.Pending
                    }
                )
        }

    let private syncInode (inode: int) (disk: DiskState) =
        let i = disk.Inodes[inode]

        { disk with
            Inodes =
                disk.Inodes.Add(
                    inode,
                    { i with
                        Durable = i.Current
                        Pending = []
                    }
                )
        }

    /// A write on a synchronous descriptor (`O_SYNC`, `O_DSYNC`, `RWF_*SYNC`), which `dataOp`
    /// just made the file's newest pending change: durable when it returns, with the size it
    /// needs, and only it. The file's earlier pending changes stay pending, cut around its range:
    /// they came before it, so whatever of them survives, that range reads as it wrote it.
    let private syncWrite (inode: int) (offset: int64) (data: byte[]) (disk: DiskState) =
        let i = disk.Inodes[inode]
        let ending = offset + int64 data.Length

        match i.Pending with
        | [ _ ]
        | [] -> syncInode inode disk
        | _ :: older ->
            let around =
                older
                |> List.collect (fun op ->
                    match op with
                    | Write(o, d) ->
                        let e = o + int64 d.Length

                        [
                            if o < offset then
                                Write(o, d[.. int (min e offset - o) - 1])
                            if e > ending then
                                Write(max o ending, d[int (max o ending - o) ..])
                        ]
                    // A shorter length set before the write cannot cut what it made durable.
                    | Resize length -> [ Resize(max length ending) ])

            { disk with
                Inodes =
                    disk.Inodes.Add(
                        inode,
                        { i with
                            Durable = Content.write i.Durable offset (ReadOnlySpan data)
                            Pending = around
                        }
                    )
            }

    let private syncDirectory (path: string) (disk: DiskState) =
        let committed, rest =
            disk.PendingNamespace
            |> List.partition (fun op -> NamespaceOp.touches op |> List.contains path)

        { disk with
            Durable = committed |> List.fold NamespaceOp.apply disk.Durable
            PendingNamespace = rest
        }

    let private syncAll (disk: DiskState) =
        let synced = disk.Inodes |> Map.fold (fun d id _ -> syncInode id d) disk

        { synced with
            Durable = disk.Current
            PendingNamespace = []
        }

    let private newFile (path: string) (disk: DiskState) =
        let id = disk.NextInode

        let disk =
            { disk with
                NextInode = id + 1
                Inodes =
                    disk.Inodes.Add(
                        id,
                        {
                            Durable = Content.empty
                            Current = Content.empty
                            Pending = []
                        }
                    )
            }

        id, namespaceOp (Link(path, id)) disk

    /// The bytes of a write's arguments: a buffer, or an iovec array.
    let private writeData (arg: StraceValue) =
        match arg with
        | Bytes(b, truncated) -> Some(b, truncated)
        | Items iovecs ->
            let parts =
                iovecs
                |> List.choose (fun v ->
                    match v with
                    | Fields fs ->
                        match fs |> List.tryFind (fun (k, _) -> k = "iov_base") with
                        | Some(_, Bytes(b, t)) -> Some(b, t)
                        | _ -> None
                    | _ -> None)

            Some(Array.concat (List.map fst parts), parts |> List.exists snd)
        | _ -> None

    let private pathArg (s: ReplayState) (dirArg: StraceValue option) (arg: StraceValue) =
        match arg with
        | Bytes(b, _) ->
            let basePath =
                match dirArg with
                | Some(Descriptor(_, p)) -> p
                | _ -> s.Cwd

            Some(resolve basePath (text b))
        | _ -> None

    let private resultFd (line: StraceLine) =
        match line.Result with
        | Some(Descriptor(fd, _))
        | Some(Number fd) -> Some fd
        | _ -> None

    let private openCall (setup: ReplaySetup) (line: StraceLine) (real: string) (flags: int64) (s: ReplayState) =
        match resultFd line with
        | None -> s
        | Some fd ->
            let path = ReplayState.simPath setup real

            let inode, disk, changed =
                match path with
                | None -> None, s.Disk, false
                | Some p ->
                    match s.Disk.Current.TryFind p with
                    | Some(FileNode id) when flags &&& OTrunc <> 0L && s.Disk.Inodes[id].Current.Length > 0L ->
                        Some id, dataOp id (Resize 0L) s.Disk, true
                    | Some(FileNode id) -> Some id, s.Disk, false
                    | Some DirNode -> None, s.Disk, false
                    | None when flags &&& OCreat <> 0L ->
                        let id, disk = newFile p s.Disk
                        Some id, disk, true
                    | None -> None, s.Disk, false

            let s =
                if path.IsSome && flags &&& OTmpFile = OTmpFile then
                    ReplayState.note "openat(O_TMPFILE)" s
                else
                    s

            let s =
                if changed then
                    ReplayState.step line path.Value disk s
                else
                    s

            let d = s.NextDescription

            { s with
                NextDescription = d + 1
                Descriptions =
                    s.Descriptions.Add(
                        d,
                        {
                            Path = path
                            RealPath = real
                            Inode = inode
                            Append = flags &&& OAppend <> 0L
                            Synchronous = flags &&& ODsync <> 0L
                            Position = 0L
                        }
                    )
            }
            |> ReplayState.bind line.Pid fd d

    /// A write at `offset` (or at the file position), `rwf` holding pwritev2's per-call flags.
    let private writeCall setup (line: StraceLine) (offset: int64 option) (rwf: int64) (s: ReplayState) =
        match line.Args, line.Result with
        | fdArg :: dataArg :: _, Some(Number written) ->
            match ReplayState.described setup line fdArg s, writeData dataArg with
            | (Some(fd, d, desc), s), Some(data, truncated) ->
                let data = Array.truncate (int written) data

                match desc.Path, desc.Inode with
                | Some path, Some inode ->
                    let s =
                        if truncated then
                            ReplayState.note "write with truncated data" s
                        else
                            s

                    let append = desc.Append || rwf &&& RwfAppend <> 0L

                    let at =
                        match offset with
                        | _ when append -> s.Disk.Inodes[inode].Current.Length
                        | Some o -> o
                        | None -> desc.Position

                    let disk = dataOp inode (Write(at, data)) s.Disk

                    let disk =
                        if desc.Synchronous || rwf &&& (RwfDsync ||| RwfSync) <> 0L then
                            syncWrite inode at data disk
                        else
                            disk

                    let s = ReplayState.step line path disk s

                    if offset.IsNone then
                        ReplayState.setPosition d (at + int64 data.Length) s
                    else
                        s
                | Some _, None -> ReplayState.note $"{line.Name} to a directory" s
                | None, _ ->
                    let s =
                        if offset.IsNone then
                            ReplayState.setPosition d (desc.Position + int64 data.Length) s
                        else
                            s

                    // Only the traced process's own answers (and its threads'): a child's
                    // standard output is often a pipe back to it.
                    if (fd = 1L || s.Stdout = Some d) && fst (ReplayState.tableOf line.Pid s) = 0 then
                        let text = Array.append s.Partial data
                        let ends = Array.LastIndexOf(text, 10uy)

                        if ends < 0 then
                            { s with Partial = text }
                        else
                            let lines =
                                (Text.Encoding.UTF8.GetString(text, 0, ends)).Split('\n')
                                |> Array.map (fun l -> { Text = l; AfterStep = s.StepCount })
                                |> Array.rev
                                |> List.ofArray

                            { s with
                                Acks = lines @ s.Acks
                                Partial = text[ends + 1 ..]
                            }
                    elif fd = 2L || ReplayState.isStd desc.RealPath then
                        s
                    else
                        ReplayState.note $"{line.Name} outside the watched tree" s
            | (_, s), _ -> s
        | _ -> s

    let private syncCall setup (line: StraceLine) (s: ReplayState) =
        match line.Args, line.Result with
        | fdArg :: _, Some _ ->
            match ReplayState.described setup line fdArg s with
            | Some(_, _, { Path = Some path; Inode = Some inode }), s ->
                ReplayState.step line path (syncInode inode s.Disk) s
            | Some(_, _, { Path = Some path; Inode = None }), s when s.Disk.Current.TryFind path = Some DirNode ->
                ReplayState.step line path (syncDirectory path s.Disk) s
            | _, s -> s
        | _ -> s

    let private namespaceCall (line: StraceLine) (ops: (string * NamespaceOp) list) (s: ReplayState) =
        ops
        |> List.fold (fun s (path, op) -> ReplayState.step line path (namespaceOp op s.Disk) s) s

    let private apply (setup: ReplaySetup) (s: ReplayState) (line: StraceLine) =
        // A relative path names the working directory strace decorates AT_FDCWD with.
        let s =
            match line.Args with
            | Descriptor(-100L, cwd) :: _ -> { s with Cwd = cwd }
            | _ -> s

        let succeeded = line.Result.IsSome
        let path dir arg = pathArg s dir arg

        let sim (real: string option) =
            real |> Option.bind (ReplayState.simPath setup)

        match line.Name, line.Args with
        | _ when not succeeded -> s
        | "openat", dir :: p :: Number flags :: _ ->
            match path (Some dir) p with
            | Some real -> openCall setup line real flags s
            | None -> s
        | "open", p :: Number flags :: _ ->
            match path None p with
            | Some real -> openCall setup line real flags s
            | None -> s
        | "creat", p :: _ ->
            match path None p with
            | Some real -> openCall setup line real (OCreat ||| OTrunc ||| 1L) s
            | None -> s
        | ("write" | "writev"), _ -> writeCall setup line None 0L s
        | "pwrite64", [ _; _; _; Number offset ]
        | "pwritev", [ _; _; _; Number offset ] -> writeCall setup line (Some offset) 0L s
        | "pwritev2", [ _; _; _; Number offset; Number rwf ] ->
            // An offset of -1 writes at the file position, as writev does.
            writeCall setup line (if offset = -1L then None else Some offset) rwf s
        | "lseek", fdArg :: _ ->
            match ReplayState.described setup line fdArg s, line.Result with
            | (Some(_, d, _), s), Some(Number position) -> ReplayState.setPosition d position s
            | (_, s), _ -> s
        | "read", fdArg :: _ ->
            match ReplayState.described setup line fdArg s, line.Result with
            | (Some(_, d, desc), s), Some(Number n) -> ReplayState.setPosition d (desc.Position + n) s
            | (_, s), _ -> s
        | "ftruncate", [ fdArg; Number length ] ->
            match ReplayState.described setup line fdArg s with
            | Some(_, _, { Path = Some path; Inode = Some inode }), s ->
                ReplayState.step line path (dataOp inode (Resize length) s.Disk) s
            | _, s -> s
        | "truncate", [ p; Number length ] ->
            match sim (path None p) with
            | Some sp ->
                match s.Disk.Current.TryFind sp with
                | Some(FileNode inode) -> ReplayState.step line sp (dataOp inode (Resize length) s.Disk) s
                | _ -> s
            | None -> s
        | "fallocate", [ fdArg; Number mode; Number offset; Number length ] ->
            match ReplayState.described setup line fdArg s with
            | Some(_, _, { Path = Some path; Inode = Some inode }), s ->
                let current = s.Disk.Inodes[inode].Current.Length

                if mode = 0L then
                    if offset + length > current then
                        ReplayState.step line path (dataOp inode (Resize(offset + length)) s.Disk) s
                    else
                        s
                elif mode = FallocKeepSize then
                    s
                elif mode = (FallocPunchHole ||| FallocKeepSize) then
                    let stop = min current (offset + length)

                    if stop > offset then
                        ReplayState.step
                            line
                            path
                            (dataOp inode (Write(offset, Array.zeroCreate (int (stop - offset)))) s.Disk)
                            s
                    else
                        s
                else
                    ReplayState.note $"fallocate mode 0x{mode:x}" s
            | _, s -> s
        | ("fsync" | "fdatasync"), _ -> syncCall setup line s
        // sync_file_range promises no durability (no metadata, no disk cache flush): nothing.
        | "sync_file_range", _ -> s
        | ("syncfs" | "sync"), _ -> ReplayState.step line "/" (syncAll s.Disk) s
        | ("rename" | "renameat" | "renameat2"), _ ->
            let source, target, flags =
                match line.Args with
                | [ a; b ] -> path None a, path None b, 0L
                | [ da; a; db; b ] -> path (Some da) a, path (Some db) b, 0L
                | [ da; a; db; b; Number f ] -> path (Some da) a, path (Some db) b, f
                | _ -> None, None, 0L

            match sim source, sim target with
            | _ when flags &&& RenameExchange <> 0L -> ReplayState.note "renameat2(RENAME_EXCHANGE)" s
            | Some sp, Some tp -> namespaceCall line [ tp, Move(sp, tp) ] s
            | Some sp, None ->
                namespaceCall line [ sp, RemoveTree sp ] (ReplayState.note "rename out of the watched tree" s)
            | None, Some _ -> ReplayState.note "rename into the watched tree" s
            | None, None -> s
        | ("unlink" | "unlinkat" | "rmdir"), _ ->
            let target, isDir =
                match line.Args with
                | [ p ] -> path None p, line.Name = "rmdir"
                | [ d; p; Number f ] -> path (Some d) p, f &&& AtRemoveDir <> 0L
                | _ -> None, false

            match sim target with
            | Some sp when isDir -> namespaceCall line [ sp, RemoveTree sp ] s
            | Some sp -> namespaceCall line [ sp, Unlink sp ] s
            | None -> s
        | ("mkdir" | "mkdirat"), _ ->
            let target =
                match line.Args with
                | [ p; _ ] -> path None p
                | [ d; p; _ ] -> path (Some d) p
                | _ -> None

            match sim target with
            | Some sp -> namespaceCall line [ sp, MakeDir sp ] s
            | None -> s
        | "close", fdArg :: _ ->
            match fdArg with
            | Descriptor(fd, _)
            | Number fd -> ReplayState.unbind line.Pid fd s
            | _ -> s
        | ("dup" | "dup2" | "dup3" | "fcntl"), fdArg :: rest ->
            let duplicates =
                match line.Name, rest with
                | "fcntl", Number cmd :: _ -> cmd = 0L || cmd = 0x406L
                | "fcntl", _ -> false
                | _ -> true

            match resultFd line with
            | Some newFd when duplicates ->
                match ReplayState.described setup line fdArg s with
                | Some(_, d, _), s -> s |> ReplayState.unbind line.Pid newFd |> ReplayState.bind line.Pid newFd d
                | None, s -> s
            | _ -> s
        | ("clone" | "clone3" | "fork" | "vfork"), args ->
            match line.Result with
            | Some(Number child) when child > 0L ->
                let rec flagsOf v =
                    match v with
                    | Named("flags", Number f) -> Some f
                    | Fields fs ->
                        fs
                        |> List.tryPick (fun (k, v) -> if k = "flags" then flagsOf (Named(k, v)) else None)
                    | _ -> None

                let flags = args |> List.tryPick flagsOf |> Option.defaultValue 0L
                let t, s = ReplayState.tableOf line.Pid s
                let parent = s.Tables |> Map.tryFind t |> Option.defaultValue Map.empty

                // What the child did before this line was printed, in the table it was given then.
                let early =
                    s.TableOf
                    |> Map.tryFind (int child)
                    |> Option.bind (fun o -> s.Tables |> Map.tryFind o)
                    |> Option.defaultValue Map.empty

                let overlay (table: Map<int64, int>) =
                    early |> Map.fold (fun (acc: Map<int64, int>) fd d -> acc.Add(fd, d)) table

                if flags &&& CloneFiles <> 0L then
                    { s with
                        Tables = s.Tables.Add(t, overlay parent)
                        TableOf = s.TableOf.Add(int child, t)
                    }
                else
                    let copy = s.NextTable

                    { s with
                        NextTable = copy + 1
                        Tables = s.Tables.Add(copy, overlay parent)
                        TableOf = s.TableOf.Add(int child, copy)
                    }
            | _ -> s
        | "mmap", _ :: _ :: _ :: Number flags :: fdArg :: _ when flags &&& 1L <> 0L ->
            // MAP_SHARED of a file in the tree: its writes bypass the calls recorded.
            match ReplayState.described setup line fdArg s with
            | Some(_, _, { Path = Some _ }), s -> ReplayState.note "mmap(MAP_SHARED)" s
            | _, s -> s
        | "msync", _ -> ReplayState.note "msync" s
        | "chdir", [ p ] ->
            match path None p with
            | Some real -> { s with Cwd = real }
            | None -> s
        | "fchdir", [ Descriptor(_, real) ] -> { s with Cwd = real }
        | ("link" | "linkat" | "symlink" | "symlinkat"), args ->
            let name =
                match line.Name, args with
                | ("link" | "symlink"), [ _; p ] -> path None p
                | "linkat", [ _; _; d; p; _ ] -> path (Some d) p
                | "symlinkat", [ _; d; p ] -> path (Some d) p
                | _ -> None

            if (sim name).IsSome then
                ReplayState.note line.Name s
            else
                s
        | ("copy_file_range" | "sendfile" | "splice"), args ->
            // Bytes moved by the kernel from another descriptor: not in the recording.
            let target =
                match line.Name, args with
                | "sendfile", out :: _ -> Some out
                | _, _ :: _ :: out :: _ -> Some out
                | _ -> None

            match target with
            | Some(Descriptor(_, real)) when (ReplayState.simPath setup real).IsSome -> ReplayState.note line.Name s
            | _ -> s
        | name, _ when name.StartsWith "io_uring" -> ReplayState.note name s
        | _ -> s

    /// Replays a recording from `initial` (the watched tree as it was when the recording
    /// started, mapped to the simulated disk's root).
    let run (setup: ReplaySetup) (initial: DiskState) (lines: StraceLine list) : Replayed =
        let start =
            {
                Disk = initial
                Descriptions = Map.empty
                NextDescription = 0
                Tables = Map.empty
                // The traced process is the pid of the recording's first line (the first call
                // replayed may be a child's, when its parent's unfinished clone is joined later).
                TableOf =
                    lines
                    |> List.tryHead
                    |> Option.map (fun _ -> Map [ (lines |> List.minBy _.Line).Pid, 0 ])
                    |> Option.defaultValue Map.empty
                NextTable = 1
                Cwd = setup.WorkingDirectory
                Steps = []
                StepCount = 0
                Acks = []
                Partial = [||]
                Stdout = None
                Unmodelled = []
            }

        let s = lines |> List.fold (apply setup) start

        {
            Steps = List.rev s.Steps
            Acknowledgements = List.rev s.Acks
            Unmodelled = s.Unmodelled
            Final = s.Disk
        }

    /// Reads and replays a recording.
    let ofText (setup: ReplaySetup) (initial: DiskState) (recording: string) : Result<Replayed, StraceError> =
        Strace.parse recording |> Result.map (run setup initial)
