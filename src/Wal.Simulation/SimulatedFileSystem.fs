// The file system over a DiskState: everything the engine does goes through Wal.Storage.IFileSystem,
// so the real engine runs on it unchanged, with power cuts after any mutating call and faults
// injected by call count or by path. What a process reads is the disk's current state, so a test
// that never cuts the power sees an ordinary in-memory file system.
namespace Wal.Simulation

open System
open System.Collections.Generic
open System.IO
open Wal.Storage

/// A power cut: every call after it fails with this.
exception PowerLoss

/// The kind of call a fault hits.
type FaultCall =
    /// fdatasync or fsync of a file, or fsync of a directory; fails with EIO.
    | DataSyncCall
    /// A write; fails with ENOSPC.
    | WriteCall
    /// fallocate; fails with ENOSPC.
    | PreallocateCall
    /// A read of a file; fails with EIO.
    | ReadCall
    /// Unlinking a file or removing a directory tree; fails with EBUSY.
    | RemoveCall

/// An injected error.
type Fault =
    /// The `nth` call of a kind (counted from 1 over the file system's life, on any path) fails.
    | NthCall of call: FaultCall * nth: int
    /// Every call of a kind on a path containing `pathContains` fails, while the fault is in place.
    /// A file's path is the one it was opened at, even after a rename.
    | OnPath of call: FaultCall * pathContains: string

/// The file system over a DiskState. `CrashAfter` cuts the power right after that many
/// mutating calls; `Observe` sees the state after every mutating call; `Faults` may change at
/// any time, a log open or not.
type SimulatedFileSystem(initial: DiskState) =
    let mutable state = initial
    let mutable mutations = 0
    let mutable syncs = 0
    let mutable dead = false
    // Bumped by Restore: a handle opened on an earlier disk refuses every call.
    let mutable generation = 0
    let locks = Dictionary<int, obj>()
    // The handles of this disk not yet closed, each by its owner token, and closes of a closed
    // handle: a file closed twice had two owners, which is a leak or a use-after-close waiting.
    let openHandles = HashSet<obj>(HashIdentity.Reference)
    let mutable doubleCloses = 0
    // A log's readers may close the last handle of a segment a compaction dropped on their own
    // thread while the writer opens the next: the handles and locks change under this gate.
    let handlesGate = obj ()
    // fdatasync or fsync called again on a handle whose last one failed (PostgreSQL's fsyncgate:
    // Linux may have dropped the dirty pages, so a retry can succeed without writing them).
    let mutable retriedSyncs = 0
    let callCounts = Dictionary<FaultCall, int>()

    /// A file system over an empty disk.
    new() = SimulatedFileSystem(DiskState.empty)

    /// Cut the power right after this many mutating calls.
    member val CrashAfter: int option = None with get, set
    /// The faults in place.
    member val Faults: Fault list = [] with get, set
    /// Told when an injected fault fires, before the call fails.
    member val OnFault: (unit -> unit) option = None with get, set
    /// Sees the count of mutating calls and the disk after every mutating call.
    member val Observe: (int -> DiskState -> unit) option = None with get, set

    /// The disk as it is now.
    member _.State = state
    /// How many mutating calls (writes, syncs, namespace changes) have been made.
    member _.Mutations = mutations
    /// How many fdatasync and fsync calls (of files and directories) succeeded.
    member _.Syncs = syncs
    /// Whether the power was cut.
    member _.Dead = dead
    /// How many file handles opened on this disk (since the last Restore) are still open.
    member _.OpenHandles = lock handlesGate (fun () -> openHandles.Count)
    /// How many times a handle was closed after it had been closed already.
    member _.DoubleCloses = doubleCloses
    /// How many times a file was synced again through a handle whose last sync failed.
    member _.RetriedSyncs = retriedSyncs

    /// The disk after a power cut now, as a new file system: every write and sync done so far is
    /// subject to what a real disk may lose, `seed` choosing what survives (lost sectors keep
    /// their old contents).
    member _.AfterPowerCut(seed: int) =
        SimulatedFileSystem(CrashImage.crash state (CrashImage.random state false seed))

    /// Puts another disk under this same file system, as a reboot after a power cut does: the
    /// power is on again, locks are gone, and every file handle opened before refuses further
    /// calls with PowerLoss (a process does not keep its descriptors across a reboot). An
    /// implementation that kept this file system sees the new disk.
    member _.Restore(next: DiskState) =
        state <- next
        dead <- false

        lock handlesGate (fun () ->
            locks.Clear()
            openHandles.Clear()
            generation <- generation + 1)

    /// The bytes of a file as a reader sees them now.
    member _.ReadAllBytes(path: string) : byte[] =
        match state.Current.TryFind path with
        | Some(FileNode id) ->
            let content = state.Inodes[id].Current
            let bytes = Array.zeroCreate<byte>(int content.Length)
            Content.read content 0L (Span bytes) |> ignore
            bytes
        | Some DirNode -> raise (IOException($"read {path}: is a directory"))
        | None -> raise (FileNotFoundException($"open {path}: no such file", path))

    /// Replaces a file's bytes, creating the file when it is missing (its directory must exist),
    /// as a process would with open(O_TRUNC), write and fdatasync, but from outside the engine's
    /// view: no call is counted, no fault hits, the power may be off. The bytes are durable; a new
    /// file's name, like any new name, only after an fsync of its directory.
    member _.WriteAllBytes(path: string, bytes: byte[]) =
        let content = Content.write Content.empty 0L (ReadOnlySpan bytes)

        let file =
            {
                Durable = content
                Current = content
                Pending = []
            }

        match state.Current.TryFind path with
        | Some(FileNode id) ->
            state <-
                { state with
                    Inodes = state.Inodes.Add(id, file)
                }
        | Some DirNode -> raise (IOException($"open {path}: is a directory"))
        | None when state.Current.TryFind(DiskPath.parent path) <> Some DirNode ->
            raise (DirectoryNotFoundException($"open {path}: no such directory"))
        | None ->
            let id = state.NextInode
            let link = Link(path, id)

            state <-
                { state with
                    NextInode = id + 1
                    Inodes = state.Inodes.Add(id, file)
                    Current = NamespaceOp.apply state.Current link
                    PendingNamespace = state.PendingNamespace @ [ link ]
                }

    /// The names in a directory as a process sees them now, in ordinal order; none when the
    /// directory does not exist.
    member _.List(directory: string) : string list =
        // The root's prefix is empty, so the root itself would look like a child of it.
        let prefix = if directory = "/" then "" else directory

        state.Current
        |> Seq.choose (fun kv ->
            if
                kv.Key <> directory
                && DiskPath.isUnder prefix kv.Key
                && kv.Key.IndexOf('/', prefix.Length + 1) < 0
            then
                Some(kv.Key.Substring(prefix.Length + 1))
            else
                None)
        |> Seq.sortWith (fun a b -> String.CompareOrdinal(a, b))
        |> List.ofSeq

    member private this.Alive() =
        if dead then
            raise PowerLoss

    member private this.AliveSince(born: int) =
        if dead || born <> generation then
            raise PowerLoss

    member private this.Fault(call: FaultCall, path: string, what: string) =
        let n =
            (match callCounts.TryGetValue call with
             | true, n -> n
             | _ -> 0)
            + 1

        callCounts[call] <- n

        let rec hits faults =
            match faults with
            | [] -> false
            | NthCall(c, nth) :: _ when c = call && nth = n -> true
            | OnPath(c, text) :: _ when c = call && path.Contains(text, StringComparison.Ordinal) -> true
            | _ :: rest -> hits rest

        if hits this.Faults then
            this.OnFault |> Option.iter (fun tell -> tell ())

            match call with
            | DataSyncCall
            | ReadCall -> raise (IOException($"{what} {path}: input/output error (injected)", 5))
            | RemoveCall -> raise (IOException($"{what} {path}: device or resource busy (injected)", 16))
            | WriteCall
            | PreallocateCall -> raise (IOException($"{what} {path}: no space left on device (injected)", 28))

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
                Current = NamespaceOp.apply state.Current op
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
                    Current = Content.apply inode.Current op
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

        syncs <- syncs + 1

    member private this.Handle(path: string, id: int, writable: bool) =
        let owner = obj ()
        let mutable closed = false
        let mutable syncFailed = false

        let born =
            lock handlesGate (fun () ->
                openHandles.Add owner |> ignore
                generation)

        // As a disposed FileStream: a call on a closed handle is a bug in its owner.
        let ensureOpen () =
            if closed then
                raise (ObjectDisposedException(path, $"{path} was closed"))

        { new IStorageFile with
            member _.Length =
                this.AliveSince born
                ensureOpen ()
                state.Inodes[id].Current.Length

            member _.Read(offset, buffer) =
                this.AliveSince born
                ensureOpen ()
                this.Fault(ReadCall, path, "read")
                Content.read state.Inodes[id].Current offset buffer

            member _.Write(offset, data) =
                this.AliveSince born
                ensureOpen ()

                if not writable then
                    raise (IOException($"write {path}: bad file descriptor"))

                this.Fault(WriteCall, path, "write")
                this.Data(id, Write(offset, data.ToArray()))

            member _.DataSync() =
                this.AliveSince born
                ensureOpen ()

                if syncFailed then
                    retriedSyncs <- retriedSyncs + 1

                // Stays set when the fault below fires.
                syncFailed <- true
                this.Fault(DataSyncCall, path, "fdatasync")
                syncFailed <- false
                this.SyncFile id

            member _.Sync() =
                this.AliveSince born
                ensureOpen ()

                if syncFailed then
                    retriedSyncs <- retriedSyncs + 1

                // Stays set when the fault below fires.
                syncFailed <- true
                this.Fault(DataSyncCall, path, "fsync")
                syncFailed <- false
                this.SyncFile id

            member _.Truncate(length) =
                this.AliveSince born
                ensureOpen ()
                this.Data(id, Resize length)

            member _.Preallocate(length) =
                this.AliveSince born
                ensureOpen ()
                this.Fault(PreallocateCall, path, "fallocate")

                if length > state.Inodes[id].Current.Length then
                    this.Data(id, Resize length)

            member _.TryLock() =
                this.AliveSince born
                ensureOpen ()

                lock handlesGate (fun () ->
                    match locks.TryGetValue id with
                    | true, o when not (obj.ReferenceEquals(o, owner)) -> false
                    | _ ->
                        locks[id] <- owner
                        true)

            member _.Dispose() =
                lock handlesGate (fun () ->
                    if closed then
                        doubleCloses <- doubleCloses + 1
                    else
                        closed <- true

                        if born = generation then
                            openHandles.Remove owner |> ignore

                        // A handle from before a Restore holds no lock on the new disk.
                        if born = generation then
                            match locks.TryGetValue id with
                            | true, o when obj.ReferenceEquals(o, owner) -> locks.Remove id |> ignore
                            | _ -> ())
        }

    interface IFileSystem with
        member this.OpenFile(path, mode) =
            this.Alive()

            match state.Current.TryFind path, mode with
            | Some DirNode, _ -> raise (NotRegularFileException(path, "a directory"))
            | _ when state.Current.TryFind(DiskPath.parent path) <> Some DirNode ->
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

            this.List path |> Array.ofList :> IReadOnlyList<string>

        member this.CreateDirectory path =
            this.Alive()

            let rec make (p: string) =
                match state.Current.TryFind p with
                | Some DirNode -> ()
                | Some(FileNode _) -> raise (IOException($"mkdir {p}: file exists"))
                | None ->
                    make (DiskPath.parent p)
                    this.Namespace(MakeDir p)

            make path

        member this.RemoveFile path =
            this.Alive()
            this.Fault(RemoveCall, path, "unlink")

            match state.Current.TryFind path with
            | Some(FileNode _) -> this.Namespace(Unlink path)
            | _ -> raise (FileNotFoundException($"unlink {path}: no such file", path))

        member this.RemoveDirectoryRecursive path =
            this.Alive()
            this.Fault(RemoveCall, path, "rmdir")

            if state.Current.TryFind path <> Some DirNode then
                raise (DirectoryNotFoundException($"rmdir {path}: no such directory"))

            this.Namespace(RemoveTree path)

        member this.Rename(source, target) =
            this.Alive()

            match state.Current.TryFind source, state.Current.TryFind target with
            | None, _ -> raise (FileNotFoundException($"rename {source}: no such file", source))
            | Some DirNode, Some DirNode when state.Current |> Map.exists (fun k _ -> DiskPath.isUnder target k) ->
                raise (IOException($"rename {source} -> {target}: directory not empty"))
            | Some DirNode, Some(FileNode _)
            | Some(FileNode _), Some DirNode -> raise (IOException($"rename {source} -> {target}: wrong kind"))
            | _ when state.Current.TryFind(DiskPath.parent target) <> Some DirNode ->
                raise (DirectoryNotFoundException($"rename {target}: no such directory"))
            | _ -> this.Namespace(Move(source, target))

        member this.SyncDirectory path =
            this.Alive()

            if state.Current.TryFind path <> Some DirNode then
                raise (DirectoryNotFoundException($"open {path}: no such directory"))

            this.Fault(DataSyncCall, path, "fsync")
            // POSIX promises no more than this: the fsync makes durable the changes that touch
            // this directory (its entries), and no others. A rename is in both its directories.
            let committed, rest =
                state.PendingNamespace
                |> List.partition (fun op -> NamespaceOp.touches op |> List.contains path)

            this.Mutated
                { state with
                    Durable = committed |> List.fold NamespaceOp.apply state.Durable
                    PendingNamespace = rest
                }

            syncs <- syncs + 1

/// The storage hook for Oracle adapters: a simulated disk for an implementation that does its
/// I/O through Wal.Storage.IFileSystem, with the Reset and PowerCut an Oracle.Adapter asks for.
/// `FileSystem` is one object for the storage's life: Reset and PowerCut put another disk under
/// it, so an implementation may keep the reference it got once; file handles opened before a
/// power cut refuse every call after it (PowerLoss), as descriptors do not survive a reboot.
type SimulatedStorage() =
    let fs = SimulatedFileSystem()

    /// The file system, the same object across Reset and PowerCut.
    member _.FileSystem: SimulatedFileSystem = fs

    /// A fresh, empty disk.
    member _.Reset() = fs.Restore DiskState.empty

    /// Cuts the power: what was not durable may be lost, `image` choosing what survives.
    member _.PowerCut(image: int) =
        let state = fs.State
        fs.Restore(CrashImage.crash state (CrashImage.random state false image))

    /// Puts this disk under the file system, as after a power cut (the crash-state explorer
    /// restores the crash images it enumerates with it).
    member _.Restore(state: DiskState) = fs.Restore state
