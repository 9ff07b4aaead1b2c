/// A disk in memory that loses what a real disk may lose at a power cut, in the manner of
/// ALICE and CrashMonkey: file data is durable only after fdatasync/fsync of the file, and a
/// directory's entries only after fsync of the directory. Everything the engine does goes
/// through Wal.Storage.IFileSystem, so the real engine runs on it unchanged.
///
/// The disk's state is an immutable value, so a crash state is captured for free after every
/// call and a crash image is built from any captured state, as often as wanted.
module Wal.Simulation.SimulatedDisk

open System
open System.Collections.Generic
open System.IO
open Wal.Storage

/// The sector size writes tear at.
[<Literal>]
let SectorBytes = 512L

/// A file's bytes. Bytes past `Bytes.Length` (and below `Length`) read as zeros, so a
/// preallocated segment costs nothing until written. `Bytes` is never changed in place.
[<Struct>]
type Content = { Bytes: byte[]; Length: int64 }

module Content =
    let empty = { Bytes = [||]; Length = 0L }

    let read (c: Content) (offset: int64) (dst: Span<byte>) =
        let n = int (max 0L (min (int64 dst.Length) (c.Length - offset)))
        let stored = int (max 0L (min (int64 n) (int64 c.Bytes.Length - offset)))

        if stored > 0 then
            ReadOnlySpan<byte>(c.Bytes, int offset, stored).CopyTo(dst)

        if n > stored then
            dst.Slice(stored, n - stored).Clear()

        n

    let write (c: Content) (offset: int64) (data: ReadOnlySpan<byte>) =
        let ending = offset + int64 data.Length
        let bytes = Array.zeroCreate<byte>(int (max (int64 c.Bytes.Length) ending))
        Array.blit c.Bytes 0 bytes 0 c.Bytes.Length
        data.CopyTo(Span<byte>(bytes, int offset, data.Length))

        {
            Bytes = bytes
            Length = max c.Length ending
        }

    let resize (c: Content) (length: int64) =
        if length >= c.Length then
            { c with Length = length }
        else
            {
                Bytes = Array.sub c.Bytes 0 (int (min length (int64 c.Bytes.Length)))
                Length = length
            }

/// A change to a file's data not yet known to be durable.
type DataOp =
    | Write of offset: int64 * data: byte[]
    | Resize of length: int64

/// A file: what is durable, what a reader sees now, and the changes in between (newest first).
type Inode =
    {
        Durable: Content
        Current: Content
        Pending: DataOp list
    }

/// A directory entry.
type Node =
    | FileNode of inode: int
    | DirNode

/// A change to the namespace. A directory fsync commits the pending changes that touch that
/// directory; a power cut keeps any prefix of the rest.
type NamespaceOp =
    | MakeDir of path: string
    | Link of path: string * inode: int
    | Unlink of path: string
    | Move of source: string * target: string
    | RemoveTree of path: string

/// Everything on the disk, as an immutable value.
type DiskState =
    {
        Inodes: Map<int, Inode>
        /// The namespace made of the changes committed by directory fsyncs.
        Durable: Map<string, Node>
        /// The namespace a process sees now.
        Current: Map<string, Node>
        /// Namespace changes not yet durable, oldest first.
        PendingNamespace: NamespaceOp list
        NextInode: int
    }

let private parentOf (path: string) =
    match Path.GetDirectoryName path with
    | null
    | "" -> "/"
    | d -> d

let private under (prefix: string) (path: string) =
    path.Length > prefix.Length
    && path.StartsWith(prefix, StringComparison.Ordinal)
    && path[prefix.Length] = '/'

/// The directories whose fsync commits a change.
let touches (op: NamespaceOp) =
    match op with
    | MakeDir p
    | Link(p, _)
    | Unlink p
    | RemoveTree p -> [ parentOf p ]
    | Move(s, t) -> [ parentOf s; parentOf t ]

/// Applies a namespace change to a namespace.
let applyNamespace (ns: Map<string, Node>) (op: NamespaceOp) =
    match op with
    | MakeDir p -> ns.Add(p, DirNode)
    | Link(p, i) -> ns.Add(p, FileNode i)
    | Unlink p -> ns.Remove p
    | RemoveTree p -> ns |> Map.filter (fun k _ -> k <> p && not (under p k))
    | Move(s, t) ->
        match ns.TryFind s with
        | None -> ns
        | Some node ->
            let moved =
                ns
                |> Map.filter (fun k _ -> under s k)
                |> Map.toList
                |> List.map (fun (k, v) -> t + k.Substring s.Length, v)

            let cleared =
                ns
                |> Map.filter (fun k _ -> k <> s && not (under s k) && k <> t && not (under t k))

            (cleared.Add(t, node), moved) ||> List.fold (fun m (k, v) -> m.Add(k, v))

let private applyData (c: Content) (op: DataOp) =
    match op with
    | Write(offset, data) -> Content.write c offset (ReadOnlySpan data)
    | Resize length -> Content.resize c length

let empty: DiskState =
    {
        Inodes = Map.empty
        Durable = Map.ofList [ "/", DirNode ]
        Current = Map.ofList [ "/", DirNode ]
        PendingNamespace = []
        NextInode = 1
    }

// ---------------------------------------------------------------------------------------------
// Crash images

/// What survives of one file's pending changes.
type FileFate =
    /// The oldest `Kept` changes survive whole; of the next one, when it is a write, the first
    /// `TornSectors` sectors (counted on the file's sector grid) survive too.
    | KeptPrefix of kept: int * tornSectors: int
    /// Each pending write's sectors survive or not on their own (the disk reorders); the
    /// length changes keep their order. `Seed` chooses.
    | KeptSectors of seed: int

/// How a power cut treats lost sectors.
type LostSectors =
    /// A lost sector keeps what it held before the lost write (zeros, for preallocated space).
    | OldContents
    /// A lost sector of a pending write reads as garbage (the stress mode).
    | Garbage of seed: int

/// One crash image: what survives of the namespace log and of each file.
type CrashImage =
    {
        NamespaceKept: int
        Files: Map<int, FileFate>
        Lost: LostSectors
    }

let private sectorsOf (offset: int64) (length: int) =
    if length = 0 then
        []
    else
        let first = offset / SectorBytes
        let last = (offset + int64 length - 1L) / SectorBytes
        [ first..last ]

/// Applies a write's bytes in the given sectors only.
let private writeSectors (c: Content) (offset: int64) (data: byte[]) (keep: int64 -> bool) =
    sectorsOf offset data.Length
    |> List.fold
        (fun c sector ->
            if keep sector then
                let start = max offset (sector * SectorBytes)
                let stop = min (offset + int64 data.Length) ((sector + 1L) * SectorBytes)
                Content.write c start (ReadOnlySpan(data, int (start - offset), int (stop - start)))
            else
                c)
        c

/// Garbage over the bytes of lost writes, from a seed. Only the lost bytes: bytes that were
/// durable before stay as they were, since the disk is assumed to write sectors atomically
/// (what etcd, and most logs, assume).
let private garble (c: Content) (lost: (int64 * int) list) (seed: int) =
    let random = Random seed

    lost
    |> List.fold
        (fun c (offset, length) ->
            let length = int (max 0L (min (int64 length) (c.Length - offset)))

            if length = 0 then
                c
            else
                let junk = Array.zeroCreate<byte> length
                random.NextBytes junk
                Content.write c offset (ReadOnlySpan junk))
        c

/// The byte ranges of a write that fall in the given sectors.
let private rangesIn (offset: int64) (length: int) (sectors: int64 list) =
    sectors
    |> List.map (fun sector ->
        let start = max offset (sector * SectorBytes)
        let stop = min (offset + int64 length) ((sector + 1L) * SectorBytes)
        start, int (stop - start))

/// The contents a file has after a power cut that treats its pending changes as `fate` says.
let survivingContent (inode: Inode) (fate: FileFate) (lost: LostSectors) =
    let pending = List.rev inode.Pending

    let wholeWrites ops =
        ops
        |> List.choose (function
            | Write(o, d) -> Some(o, d.Length)
            | Resize _ -> None)

    let content, lostRanges =
        match fate with
        | KeptPrefix(kept, torn) ->
            let kept = min kept pending.Length
            let whole = pending |> List.take kept |> List.fold applyData inode.Durable

            match pending |> List.skip kept with
            | Write(offset, data) :: later ->
                let sectors = sectorsOf offset data.Length
                let firstSector = List.head sectors
                let keep (s: int64) = s - firstSector < int64 torn

                writeSectors whole offset data keep,
                rangesIn offset data.Length (sectors |> List.filter (keep >> not))
                @ wholeWrites later
            | rest -> whole, wholeWrites rest
        | KeptSectors seed ->
            let random = Random seed
            let mutable lostRanges = []

            let content =
                pending
                |> List.fold
                    (fun c op ->
                        match op with
                        | Resize _ -> applyData c op
                        | Write(offset, data) ->
                            let sectors = sectorsOf offset data.Length
                            let kept = sectors |> List.filter (fun _ -> random.Next 2 = 0) |> Set.ofList

                            lostRanges <-
                                rangesIn offset data.Length (sectors |> List.filter (kept.Contains >> not))
                                @ lostRanges

                            writeSectors c offset data kept.Contains)
                    inode.Durable

            content, lostRanges

    match lost with
    | OldContents -> content
    | Garbage seed -> garble content lostRanges seed

/// The disk a power cut leaves, every change in it durable.
let crash (state: DiskState) (image: CrashImage) : DiskState =
    let ns =
        state.PendingNamespace
        |> List.truncate image.NamespaceKept
        |> List.fold applyNamespace state.Durable

    let inodes =
        state.Inodes
        |> Map.map (fun id inode ->
            let fate = image.Files |> Map.tryFind id |> Option.defaultValue (KeptPrefix(0, 0))
            let c = survivingContent inode fate image.Lost

            {
                Durable = c
                Current = c
                Pending = []
            })

    { state with
        Inodes = inodes
        Durable = ns
        Current = ns
        PendingNamespace = []
    }

/// The files whose pending changes a crash image decides about.
let undecided (state: DiskState) =
    state.Inodes |> Map.filter (fun _ i -> not i.Pending.IsEmpty)

/// A random crash image for a state, from a seed.
let randomImage (state: DiskState) (garbage: bool) (seed: int) : CrashImage =
    let random = Random seed

    let fates =
        undecided state
        |> Map.map (fun _ inode ->
            match random.Next 4 with
            | 0 -> KeptSectors(random.Next())
            | _ ->
                let n = inode.Pending.Length
                KeptPrefix(random.Next(n + 1), random.Next 9))

    {
        NamespaceKept = random.Next(state.PendingNamespace.Length + 1)
        Files = fates
        Lost = if garbage then Garbage(random.Next()) else OldContents
    }

/// The crash images of a state, as CrashMonkey bounds its search. The choices are: each prefix
/// of the namespace log; for each file, each prefix of its changes with the next write torn after
/// 0, 1 or 2 sectors, and `reorderings` random sector subsets. When there are at most `bound`
/// combinations, every one is returned; otherwise `bound` of them, drawn from `seed`.
let images (state: DiskState) (reorderings: int) (bound: int) (seed: int) : CrashImage list =
    let fatesOf (inode: Inode) =
        [|
            for kept in 0 .. inode.Pending.Length do
                yield KeptPrefix(kept, 0)

                if kept < inode.Pending.Length then
                    match List.rev inode.Pending |> List.item kept with
                    | Write(offset, data) ->
                        let sectors = (sectorsOf offset data.Length).Length

                        for torn in 1 .. min 2 (sectors - 1) do
                            yield KeptPrefix(kept, torn)
                    | Resize _ -> ()
            for r in 1..reorderings do
                yield KeptSectors(seed + r)
        |]

    let files =
        undecided state |> Map.toList |> List.map (fun (id, inode) -> id, fatesOf inode)

    let namespaceChoices = state.PendingNamespace.Length + 1

    let total =
        files
        |> List.fold (fun acc (_, fates) -> acc * float fates.Length) (float namespaceChoices)

    let image (pick: int -> int) =
        {
            NamespaceKept = pick namespaceChoices
            Files =
                files
                |> List.map (fun (id, fates) -> id, fates[pick fates.Length])
                |> Map.ofList
            Lost = OldContents
        }

    if total <= float bound then
        // Every combination, by counting in mixed radix.
        [
            for n in 0 .. int total - 1 do
                let mutable rest = n

                yield
                    image (fun radix ->
                        let digit = rest % radix
                        rest <- rest / radix
                        digit)
        ]
    else
        let random = Random seed
        [ for _ in 1..bound -> image random.Next ]

/// Flips one bit of a durable file's byte (bit rot), choosing file, byte and bit from a seed.
/// Returns None when no file has a byte to flip.
let rot (state: DiskState) (seed: int) : (DiskState * (string * int64)) option =
    let files =
        state.Durable
        |> Map.toList
        |> List.choose (function
            | path, FileNode i when state.Inodes[i].Durable.Length > 0L -> Some(path, i)
            | _ -> None)

    if files.IsEmpty then
        None
    else
        let random = Random seed
        let path, id = files[random.Next files.Length]
        let inode = state.Inodes[id]
        let c = inode.Durable
        let offset = int64 (random.NextDouble() * float c.Length) |> min (c.Length - 1L)
        let b = Array.zeroCreate<byte> 1
        Content.read c offset (Span b) |> ignore
        b[0] <- b[0] ^^^ (1uy <<< random.Next 8)
        let c = Content.write c offset (ReadOnlySpan b)

        Some(
            { state with
                Inodes =
                    state.Inodes.Add(
                        id,
                        {
                            Durable = c
                            Current = c
                            Pending = []
                        }
                    )
            },
            (path, offset)
        )

// ---------------------------------------------------------------------------------------------
// The file system

/// A power cut: every call after it fails with this.
exception PowerLoss

/// Which call a fault hits.
type FaultCall =
    | DataSyncCall
    | WriteCall
    | PreallocateCall

/// An injected error: the `Nth` (from 1) call of a kind fails with EIO (sync) or ENOSPC.
type Fault = { Call: FaultCall; Nth: int }

/// The file system over a DiskState. `CrashAfter` cuts the power right after that many
/// mutating calls; `Observe` sees the state after every mutating call.
type SimulatedFileSystem(initial: DiskState) =
    let mutable state = initial
    let mutable mutations = 0
    let mutable dead = false
    let locks = Dictionary<int, obj>()
    let faultCounts = Dictionary<FaultCall, int>()

    member val CrashAfter: int option = None with get, set
    member val Faults: Fault list = [] with get, set
    member val Observe: (int -> DiskState -> unit) option = None with get, set

    /// The disk as it is now.
    member _.State = state
    /// How many mutating calls (writes, syncs, namespace changes) have been made.
    member _.Mutations = mutations
    /// Whether the power was cut.
    member _.Dead = dead

    member private this.Alive() =
        if dead then
            raise PowerLoss

    member private this.Fault(call: FaultCall, what: string) =
        if not this.Faults.IsEmpty then
            let n =
                (match faultCounts.TryGetValue call with
                 | true, n -> n
                 | _ -> 0)
                + 1

            faultCounts[call] <- n

            if this.Faults |> List.exists (fun f -> f.Call = call && f.Nth = n) then
                match call with
                | DataSyncCall -> raise (IOException($"{what}: input/output error (injected)", 5))
                | WriteCall
                | PreallocateCall -> raise (IOException($"{what}: no space left on device (injected)", 28))

    member private this.Mutated(next: DiskState) =
        state <- next
        mutations <- mutations + 1
        this.Observe |> Option.iter (fun f -> f mutations state)

        match this.CrashAfter with
        | Some n when mutations >= n ->
            dead <- true
            raise PowerLoss
        | _ -> ()

    member private this.Namespace(op: NamespaceOp) =
        this.Mutated
            { state with
                Current = applyNamespace state.Current op
                PendingNamespace = state.PendingNamespace @ [ op ]
            }

    member private this.Inode(id: int, change: Inode -> Inode) =
        this.Mutated
            { state with
                Inodes = state.Inodes.Add(id, change state.Inodes[id])
            }

    member private this.Data(id: int, op: DataOp) =
        this.Inode(
            id,
            fun inode ->
                { inode with
                    Current = applyData inode.Current op
                    Pending = op :: inode.Pending
                }
        )

    member private this.SyncFile(id: int) =
        this.Inode(
            id,
            fun inode ->
                { inode with
                    Durable = inode.Current
                    Pending = []
                }
        )

    member private this.Handle(path: string, id: int, writable: bool) =
        let owner = obj ()
        let mutable closed = false

        { new IStorageFile with
            member _.Length =
                this.Alive()
                state.Inodes[id].Current.Length

            member _.Read(offset, buffer) =
                this.Alive()
                Content.read state.Inodes[id].Current offset buffer

            member _.Write(offset, data) =
                this.Alive()

                if not writable then
                    raise (IOException($"write {path}: bad file descriptor"))

                this.Fault(WriteCall, $"write {path}")
                this.Data(id, Write(offset, data.ToArray()))

            member _.DataSync() =
                this.Alive()
                this.Fault(DataSyncCall, $"fdatasync {path}")
                this.SyncFile id

            member _.Sync() =
                this.Alive()
                this.Fault(DataSyncCall, $"fsync {path}")
                this.SyncFile id

            member _.Truncate(length) =
                this.Alive()
                this.Data(id, Resize length)

            member _.Preallocate(length) =
                this.Alive()
                this.Fault(PreallocateCall, $"fallocate {path}")

                if length > state.Inodes[id].Current.Length then
                    this.Data(id, Resize length)

            member _.TryLock() =
                this.Alive()

                match locks.TryGetValue id with
                | true, o when not (obj.ReferenceEquals(o, owner)) -> false
                | _ ->
                    locks[id] <- owner
                    true

            member _.Dispose() =
                if not closed then
                    closed <- true

                    match locks.TryGetValue id with
                    | true, o when obj.ReferenceEquals(o, owner) -> locks.Remove id |> ignore
                    | _ -> ()
        }

    interface IFileSystem with
        member this.OpenFile(path, mode) =
            this.Alive()

            match state.Current.TryFind path, mode with
            | Some DirNode, _ -> raise (IOException($"open {path}: is a directory"))
            | _ when state.Current.TryFind(parentOf path) <> Some DirNode ->
                raise (DirectoryNotFoundException($"open {path}: no such directory"))
            | Some(FileNode id), OpenMode.CreateTruncate ->
                this.Data(id, Resize 0L)
                this.Handle(path, id, true)
            | Some(FileNode id), _ -> this.Handle(path, id, (mode <> OpenMode.Read))
            | None, OpenMode.CreateTruncate ->
                let id = state.NextInode

                state <-
                    { state with
                        NextInode = id + 1
                        Inodes =
                            state.Inodes.Add(
                                id,
                                {
                                    Durable = Content.empty
                                    Current = Content.empty
                                    Pending = []
                                }
                            )
                    }

                this.Namespace(Link(path, id))
                this.Handle(path, id, true)
            | None, _ -> raise (FileNotFoundException($"open {path}: no such file", path))

        member this.FileExists path =
            this.Alive()

            match state.Current.TryFind path with
            | Some(FileNode _) -> true
            | _ -> false

        member this.DirectoryExists path =
            this.Alive()
            state.Current.TryFind path = Some DirNode

        member this.ListDirectory path =
            this.Alive()

            if state.Current.TryFind path <> Some DirNode then
                raise (DirectoryNotFoundException($"opendir {path}: no such directory"))

            let prefix = if path = "/" then "" else path

            state.Current
            |> Seq.choose (fun kv ->
                if under prefix kv.Key && kv.Key.IndexOf('/', prefix.Length + 1) < 0 then
                    Some(kv.Key.Substring(prefix.Length + 1))
                else
                    None)
            |> Seq.sortWith (fun a b -> String.CompareOrdinal(a, b))
            |> Array.ofSeq
            :> IReadOnlyList<string>

        member this.CreateDirectory path =
            this.Alive()

            let rec make (p: string) =
                match state.Current.TryFind p with
                | Some DirNode -> ()
                | Some(FileNode _) -> raise (IOException($"mkdir {p}: file exists"))
                | None ->
                    make (parentOf p)
                    this.Namespace(MakeDir p)

            make path

        member this.RemoveFile path =
            this.Alive()

            match state.Current.TryFind path with
            | Some(FileNode _) -> this.Namespace(Unlink path)
            | _ -> raise (FileNotFoundException($"unlink {path}: no such file", path))

        member this.RemoveDirectoryRecursive path =
            this.Alive()

            if state.Current.TryFind path <> Some DirNode then
                raise (DirectoryNotFoundException($"rmdir {path}: no such directory"))

            this.Namespace(RemoveTree path)

        member this.Rename(source, target) =
            this.Alive()

            match state.Current.TryFind source, state.Current.TryFind target with
            | None, _ -> raise (FileNotFoundException($"rename {source}: no such file", source))
            | Some DirNode, Some DirNode when state.Current |> Map.exists (fun k _ -> under target k) ->
                raise (IOException($"rename {source} -> {target}: directory not empty"))
            | Some DirNode, Some(FileNode _)
            | Some(FileNode _), Some DirNode -> raise (IOException($"rename {source} -> {target}: wrong kind"))
            | _ when state.Current.TryFind(parentOf target) <> Some DirNode ->
                raise (DirectoryNotFoundException($"rename {target}: no such directory"))
            | _ -> this.Namespace(Move(source, target))

        member this.SyncDirectory path =
            this.Alive()

            if state.Current.TryFind path <> Some DirNode then
                raise (DirectoryNotFoundException($"open {path}: no such directory"))

            this.Fault(DataSyncCall, $"fsync {path}")
            // POSIX promises no more than this: the fsync makes durable the changes that touch
            // this directory (its entries), and no others. A rename is in both its directories.
            let committed, rest =
                state.PendingNamespace
                |> List.partition (fun op -> touches op |> List.contains path)

            this.Mutated
                { state with
                    Durable = committed |> List.fold applyNamespace state.Durable
                    PendingNamespace = rest
                }

/// The disk after a power cut now: every write and sync done so far is subject to what a real
/// disk may lose, `seed` choosing what survives (lost sectors keep their old contents).
let powerCut (fs: SimulatedFileSystem) (seed: int) =
    SimulatedFileSystem(crash fs.State (randomImage fs.State false seed))

/// The storage hook for Oracle adapters: a simulated disk for an implementation that does its
/// I/O through Wal.Storage.IFileSystem, with the Reset and PowerCut an Oracle.Adapter asks for.
/// After either, hand the implementation `FileSystem` again (a power cut is a new disk state).
type SimulatedStorage() =
    let mutable fs = SimulatedFileSystem(empty)

    /// The disk as it is now.
    member _.FileSystem: SimulatedFileSystem = fs

    /// A fresh, empty disk.
    member _.Reset() = fs <- SimulatedFileSystem(empty)

    /// Cuts the power: what was not durable may be lost, `image` choosing what survives.
    member _.PowerCut(image: int) = fs <- powerCut fs image
