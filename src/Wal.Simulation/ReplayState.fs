// What a replay keeps besides the disk: the open file descriptions and the descriptor tables
// that name them (per process, shared by threads and by dup'ed descriptors), the steps so far,
// the answers on standard output and the calls it could not model. Replay.fs applies the calls.
namespace Wal.Simulation

open System

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
type internal Description =
    {
        /// The path on the simulated disk, or None outside the watched tree.
        Path: string option
        RealPath: string
        Inode: int option
        Append: bool
        Synchronous: bool
        Position: int64
    }

type internal ReplayState =
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

/// The replay's state: descriptor tables, file positions, steps and notes.
[<RequireQualifiedAccess>]
module internal ReplayState =
    /// A real path on the simulated disk, or None outside the watched tree.
    let simPath (setup: ReplaySetup) (real: string) =
        let root = setup.Root.TrimEnd '/'

        if real = root then
            Some "/"
        elif real.StartsWith(root + "/", StringComparison.Ordinal) then
            Some(real.Substring root.Length)
        else
            None

    /// Not a file on a disk: devices, pipes, sockets, kernel interfaces, anonymous memory.
    let isStd (path: string) =
        [ "/dev/"; "/proc/"; "/sys/"; "/memfd:"; "pipe:"; "socket:"; "anon_inode:" ]
        |> List.exists (fun prefix -> path.StartsWith(prefix, StringComparison.Ordinal))

    /// Names a call the disk cannot model, once.
    let note (name: string) (s: ReplayState) =
        if List.contains name s.Unmodelled then
            s
        else
            { s with
                Unmodelled = s.Unmodelled @ [ name ]
            }

    /// The descriptor table a pid uses.
    let tableOf (pid: int) (s: ReplayState) =
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

    /// The description a pid's descriptor names, if known.
    let lookup (pid: int) (fd: int64) (s: ReplayState) =
        let t, s = tableOf pid s

        s.Tables
        |> Map.tryFind t
        |> Option.bind (Map.tryFind fd)
        |> Option.map (fun d -> d, s.Descriptions[d])

    /// A pid's descriptor now names `description`.
    let bind (pid: int) (fd: int64) (description: int) (s: ReplayState) =
        let t, s = tableOf pid s
        let table = s.Tables |> Map.tryFind t |> Option.defaultValue Map.empty

        { s with
            Tables = s.Tables.Add(t, table.Add(fd, description))
        }

    /// A pid's descriptor is closed.
    let unbind (pid: int) (fd: int64) (s: ReplayState) =
        let t, s = tableOf pid s
        let table = s.Tables |> Map.tryFind t |> Option.defaultValue Map.empty

        { s with
            Tables = s.Tables.Add(t, table.Remove fd)
        }

    /// A mutating call: the disk after it, kept as a step.
    let step (line: StraceLine) (path: string) (disk: DiskState) (s: ReplayState) =
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

    /// The description a descriptor names: from the table, or (opened before the recording, or
    /// in a table the replay did not see made) from the path strace decorated it with.
    let described (setup: ReplaySetup) (line: StraceLine) (arg: StraceValue) (s: ReplayState) =
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

    /// A description's file position.
    let setPosition (d: int) (position: int64) (s: ReplayState) =
        { s with
            Descriptions =
                s.Descriptions.Add(
                    d,
                    { s.Descriptions[d] with
                        Position = position
                    }
                )
        }
