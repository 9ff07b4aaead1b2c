// A recording replayed into the simulated disk: the calls, in order, applied to a DiskState as
// ALICE replays a trace, with the descriptor tables (per process, shared by threads and by dup'ed
// descriptors' file positions) kept as the kernel keeps them. The disk after every mutating call
// is kept, so crash images (CrashImage.fs) of any point can be enumerated later.
namespace Wal.Simulation

open System
open System.IO

/// Where a recording was made: the directory tree it watches (mapped to the simulated disk's
/// root) and the working directory of the recorded process when it started.
type ReplaySetup =
    {
        Root: string
        WorkingDirectory: string
    }

/// The disk after one mutating call.
type ReplayStep =
    {
        /// From 1, in the order of the recording.
        Number: int
        /// The call as recorded: its line and name.
        Line: int
        Call: string
        /// The path it changed, on the simulated disk.
        Path: string
        State: DiskState
    }

/// A line the process wrote to its standard output: an answer it acknowledged.
type Acknowledgement =
    {
        /// The line, without its newline (UTF-8).
        Text: string
        /// How many mutating calls (steps) came before the write that ended the line.
        AfterStep: int
    }

/// A recording replayed.
type Replayed =
    {
        Steps: ReplayStep list
        /// The lines of standard output, in order; an unfinished last line is left out.
        Acknowledgements: Acknowledgement list
        /// The calls the simulated disk cannot model, each named once, in order of first sight.
        Unmodelled: string list
        Final: DiskState
    }

/// An open file description: what dup'ed descriptors share.
type private Description =
    {
        /// The path on the simulated disk, or None outside the watched tree.
        Path: string option
        RealPath: string
        Inode: int option
        Append: bool
        Synchronous: bool
        Position: int64
    }

type private ReplayState =
    {
        Disk: DiskState
        Descriptions: Map<int, Description>
        NextDescription: int
        /// Descriptor tables, by table; each maps a descriptor to its description.
        Tables: Map<int, Map<int64, int>>
        /// The table each pid uses (threads share one).
        TableOf: Map<int, int>
        NextTable: int
        Cwd: string
        Steps: ReplayStep list
        StepCount: int
        Acks: Acknowledgement list
        /// Standard output's bytes since its last newline.
        Partial: byte[]
        /// The description of the traced process's descriptor 1, once seen: its answers may be
        /// written through a dup of it (.NET's Console writes to a dup'ed descriptor).
        Stdout: int option
        Unmodelled: string list
    }

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

    let private simPath (setup: ReplaySetup) (real: string) =
        let root = setup.Root.TrimEnd '/'

        if real = root then
            Some "/"
        elif real.StartsWith(root + "/", StringComparison.Ordinal) then
            Some(real.Substring root.Length)
        else
            None

    /// Not a file on a disk: devices, pipes, sockets, kernel interfaces, anonymous memory.
    let private isStd (path: string) =
        [ "/dev/"; "/proc/"; "/sys/"; "/memfd:"; "pipe:"; "socket:"; "anon_inode:" ]
        |> List.exists (fun prefix -> path.StartsWith(prefix, StringComparison.Ordinal))

    let private resolve (basePath: string) (path: string) =
        Path.GetFullPath(
            if path.StartsWith "/" then
                path
            else
                Path.Combine(basePath, path)
        )

    let private text (b: byte[]) = Text.Encoding.UTF8.GetString b

    let private note (name: string) (s: ReplayState) =
        if List.contains name s.Unmodelled then
            s
        else
            { s with
                Unmodelled = s.Unmodelled @ [ name ]
            }

    let private tableOf (pid: int) (s: ReplayState) =
        match s.TableOf.TryFind pid with
        | Some t -> t, s
        | None when s.TableOf.IsEmpty ->
            // The first pid of the recording is the traced process itself: table 0.
            0,
            { s with
                TableOf = s.TableOf.Add(pid, 0)
            }
        | None ->
            // A child that ran before strace printed its parent's clone returning: a table of its
            // own until the clone says what it shares (see the clone case).
            let t = s.NextTable

            t,
            { s with
                NextTable = t + 1
                TableOf = s.TableOf.Add(pid, t)
                Tables = s.Tables.Add(t, Map.empty)
            }

    let private lookup (pid: int) (fd: int64) (s: ReplayState) =
        let t, s = tableOf pid s

        s.Tables
        |> Map.tryFind t
        |> Option.bind (Map.tryFind fd)
        |> Option.map (fun d -> d, s.Descriptions[d])

    let private bind (pid: int) (fd: int64) (description: int) (s: ReplayState) =
        let t, s = tableOf pid s
        let table = s.Tables |> Map.tryFind t |> Option.defaultValue Map.empty

        { s with
            Tables = s.Tables.Add(t, table.Add(fd, description))
        }

    let private unbind (pid: int) (fd: int64) (s: ReplayState) =
        let t, s = tableOf pid s
        let table = s.Tables |> Map.tryFind t |> Option.defaultValue Map.empty

        { s with
            Tables = s.Tables.Add(t, table.Remove fd)
        }

    let private step (line: StraceLine) (path: string) (disk: DiskState) (s: ReplayState) =
        { s with
            Disk = disk
            StepCount = s.StepCount + 1
            Steps =
                {
                    Number = s.StepCount + 1
                    Line = line.Line
                    Call = line.Name
                    Path = path
                    State = disk
                }
                :: s.Steps
        }

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
            let path = simPath setup real

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
                    note "openat(O_TMPFILE)" s
                else
                    s

            let s = if changed then step line path.Value disk s else s

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
            |> bind line.Pid fd d

    /// The description a descriptor names: from the table, or (opened before the recording, or
    /// in a table the replay did not see made) from the path strace decorated it with.
    let private described (setup: ReplaySetup) (line: StraceLine) (arg: StraceValue) (s: ReplayState) =
        match arg with
        | Descriptor(fd, real)
        | Named(_, Descriptor(fd, real)) ->
            match lookup line.Pid fd s with
            | Some(d, desc) -> Some(fd, d, desc), s
            | None ->
                let path = simPath setup real

                let inode =
                    path
                    |> Option.bind (fun p ->
                        match s.Disk.Current.TryFind p with
                        | Some(FileNode id) -> Some id
                        | _ -> None)

                let d = s.NextDescription

                let desc =
                    {
                        Path = path
                        RealPath = real
                        Inode = inode
                        Append = false
                        Synchronous = false
                        Position = 0L
                    }

                let s =
                    { s with
                        NextDescription = d + 1
                        Descriptions = s.Descriptions.Add(d, desc)
                        Stdout =
                            if fd = 1L && s.Stdout.IsNone && fst (tableOf line.Pid s) = 0 then
                                Some d
                            else
                                s.Stdout
                    }
                    |> bind line.Pid fd d

                Some(fd, d, desc), s
        | Number fd ->
            match lookup line.Pid fd s with
            | Some(d, desc) -> Some(fd, d, desc), s
            | None -> None, s
        | _ -> None, s

    let private setPosition (d: int) (position: int64) (s: ReplayState) =
        { s with
            Descriptions =
                s.Descriptions.Add(
                    d,
                    { s.Descriptions[d] with
                        Position = position
                    }
                )
        }

    /// A write at `offset` (or at the file position), `rwf` holding pwritev2's per-call flags.
    let private writeCall setup (line: StraceLine) (offset: int64 option) (rwf: int64) (s: ReplayState) =
        match line.Args, line.Result with
        | fdArg :: dataArg :: _, Some(Number written) ->
            match described setup line fdArg s, writeData dataArg with
            | (Some(fd, d, desc), s), Some(data, truncated) ->
                let data = Array.truncate (int written) data

                match desc.Path, desc.Inode with
                | Some path, Some inode ->
                    let s = if truncated then note "write with truncated data" s else s

                    let append = desc.Append || rwf &&& RwfAppend <> 0L

                    let at =
                        match offset with
                        | _ when append -> s.Disk.Inodes[inode].Current.Length
                        | Some o -> o
                        | None -> desc.Position

                    let disk = dataOp inode (Write(at, data)) s.Disk

                    let disk =
                        if desc.Synchronous || rwf &&& (RwfDsync ||| RwfSync) <> 0L then
                            syncInode inode disk
                        else
                            disk

                    let s = step line path disk s

                    if offset.IsNone then
                        setPosition d (at + int64 data.Length) s
                    else
                        s
                | Some _, None -> note $"{line.Name} to a directory" s
                | None, _ ->
                    let s =
                        if offset.IsNone then
                            setPosition d (desc.Position + int64 data.Length) s
                        else
                            s

                    // Only the traced process's own answers (and its threads'): a child's
                    // standard output is often a pipe back to it.
                    if (fd = 1L || s.Stdout = Some d) && fst (tableOf line.Pid s) = 0 then
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
                    elif fd = 2L || isStd desc.RealPath then
                        s
                    else
                        note $"{line.Name} outside the watched tree" s
            | (_, s), _ -> s
        | _ -> s

    let private syncCall setup (line: StraceLine) (s: ReplayState) =
        match line.Args, line.Result with
        | fdArg :: _, Some _ ->
            match described setup line fdArg s with
            | Some(_, _, { Path = Some path; Inode = Some inode }), s -> step line path (syncInode inode s.Disk) s
            | Some(_, _, { Path = Some path; Inode = None }), s when s.Disk.Current.TryFind path = Some DirNode ->
                step line path (syncDirectory path s.Disk) s
            | _, s -> s
        | _ -> s

    let private namespaceCall (line: StraceLine) (ops: (string * NamespaceOp) list) (s: ReplayState) =
        ops
        |> List.fold (fun s (path, op) -> step line path (namespaceOp op s.Disk) s) s

    let private apply (setup: ReplaySetup) (s: ReplayState) (line: StraceLine) =
        // A relative path names the working directory strace decorates AT_FDCWD with.
        let s =
            match line.Args with
            | Descriptor(-100L, cwd) :: _ -> { s with Cwd = cwd }
            | _ -> s

        let succeeded = line.Result.IsSome
        let path dir arg = pathArg s dir arg
        let sim (real: string option) = real |> Option.bind (simPath setup)

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
            match described setup line fdArg s, line.Result with
            | (Some(_, d, _), s), Some(Number position) -> setPosition d position s
            | (_, s), _ -> s
        | "read", fdArg :: _ ->
            match described setup line fdArg s, line.Result with
            | (Some(_, d, desc), s), Some(Number n) -> setPosition d (desc.Position + n) s
            | (_, s), _ -> s
        | "ftruncate", [ fdArg; Number length ] ->
            match described setup line fdArg s with
            | Some(_, _, { Path = Some path; Inode = Some inode }), s ->
                step line path (dataOp inode (Resize length) s.Disk) s
            | _, s -> s
        | "truncate", [ p; Number length ] ->
            match sim (path None p) with
            | Some sp ->
                match s.Disk.Current.TryFind sp with
                | Some(FileNode inode) -> step line sp (dataOp inode (Resize length) s.Disk) s
                | _ -> s
            | None -> s
        | "fallocate", [ fdArg; Number mode; Number offset; Number length ] ->
            match described setup line fdArg s with
            | Some(_, _, { Path = Some path; Inode = Some inode }), s ->
                let current = s.Disk.Inodes[inode].Current.Length

                if mode = 0L then
                    if offset + length > current then
                        step line path (dataOp inode (Resize(offset + length)) s.Disk) s
                    else
                        s
                elif mode = FallocKeepSize then
                    s
                elif mode = (FallocPunchHole ||| FallocKeepSize) then
                    let stop = min current (offset + length)

                    if stop > offset then
                        step line path (dataOp inode (Write(offset, Array.zeroCreate (int (stop - offset)))) s.Disk) s
                    else
                        s
                else
                    note $"fallocate mode 0x{mode:x}" s
            | _, s -> s
        | ("fsync" | "fdatasync"), _ -> syncCall setup line s
        // sync_file_range promises no durability (no metadata, no disk cache flush): nothing.
        | "sync_file_range", _ -> s
        | ("syncfs" | "sync"), _ -> step line "/" (syncAll s.Disk) s
        | ("rename" | "renameat" | "renameat2"), _ ->
            let source, target, flags =
                match line.Args with
                | [ a; b ] -> path None a, path None b, 0L
                | [ da; a; db; b ] -> path (Some da) a, path (Some db) b, 0L
                | [ da; a; db; b; Number f ] -> path (Some da) a, path (Some db) b, f
                | _ -> None, None, 0L

            match sim source, sim target with
            | _ when flags &&& RenameExchange <> 0L -> note "renameat2(RENAME_EXCHANGE)" s
            | Some sp, Some tp -> namespaceCall line [ tp, Move(sp, tp) ] s
            | Some sp, None -> namespaceCall line [ sp, RemoveTree sp ] (note "rename out of the watched tree" s)
            | None, Some _ -> note "rename into the watched tree" s
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
            | Number fd -> unbind line.Pid fd s
            | _ -> s
        | ("dup" | "dup2" | "dup3" | "fcntl"), fdArg :: rest ->
            let duplicates =
                match line.Name, rest with
                | "fcntl", Number cmd :: _ -> cmd = 0L || cmd = 0x406L
                | "fcntl", _ -> false
                | _ -> true

            match resultFd line with
            | Some newFd when duplicates ->
                match described setup line fdArg s with
                | Some(_, d, _), s -> s |> unbind line.Pid newFd |> bind line.Pid newFd d
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
                let t, s = tableOf line.Pid s
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
            match described setup line fdArg s with
            | Some(_, _, { Path = Some _ }), s -> note "mmap(MAP_SHARED)" s
            | _, s -> s
        | "msync", _ -> note "msync" s
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

            if (sim name).IsSome then note line.Name s else s
        | ("copy_file_range" | "sendfile" | "splice"), args ->
            // Bytes moved by the kernel from another descriptor: not in the recording.
            let target =
                match line.Name, args with
                | "sendfile", out :: _ -> Some out
                | _, _ :: _ :: out :: _ -> Some out
                | _ -> None

            match target with
            | Some(Descriptor(_, real)) when (simPath setup real).IsSome -> note line.Name s
            | _ -> s
        | name, _ when name.StartsWith "io_uring" -> note name s
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
                TableOf = Map.empty
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
