/// An in-memory file system behind the engine's storage interface, with hooks that inject
/// faults (EIO on fdatasync, ENOSPC on write or preallocation). It keeps no notion of
/// durability yet: every write is immediately what a reader sees.
module Wal.Properties.MemoryFileSystem

open System
open System.Collections.Generic
open System.IO
open Wal.Storage

/// A fault to inject: which call, on which path, fails.
type Fault =
    | FailDataSync of pathContains: string
    | FailWrite of pathContains: string
    | FailPreallocate of pathContains: string

type private Node =
    {
        mutable Data: byte[]
        mutable Length: int64
        mutable LockedBy: obj option
    }

type MemoryFileSystem() =
    let files = Dictionary<string, Node>(StringComparer.Ordinal)
    let dirs = HashSet<string>([ "/" ], StringComparer.Ordinal)
    let faults = ResizeArray<Fault>()
    let mutable syncs = 0

    let parent (p: string) =
        match Path.GetDirectoryName p with
        | null
        | "" -> "/"
        | d -> d

    let fail (what: string) (path: string) =
        raise (IOException($"{what} {path}: injected fault", 5))

    let check (what: string) (path: string) =
        let hit fault =
            match fault, what with
            | FailDataSync s, ("fdatasync" | "fsync")
            | FailWrite s, "write"
            | FailPreallocate s, "fallocate" -> path.Contains(s: string)
            | _ -> false

        if faults |> Seq.exists hit then
            fail what path

    let ensure (node: Node) (length: int64) =
        if int64 node.Data.Length < length then
            let grown = Array.zeroCreate (int (max length (int64 node.Data.Length * 2L)))
            Array.blit node.Data 0 grown 0 (int node.Length)
            node.Data <- grown

    let children (dir: string) =
        let prefix = if dir.EndsWith "/" then dir else dir + "/"

        Seq.append files.Keys dirs
        |> Seq.filter (fun p ->
            p.StartsWith(prefix, StringComparison.Ordinal)
            && p.Length > prefix.Length
            && not (p.Substring(prefix.Length).Contains '/'))
        |> Seq.map (fun p -> p.Substring prefix.Length)
        |> Seq.sortWith (fun a b -> String.CompareOrdinal(a, b))
        |> List.ofSeq

    /// Faults currently injected.
    member _.Faults = faults
    /// How many fdatasync/fsync calls succeeded.
    member _.Syncs = syncs

    /// The bytes of a file, up to its length.
    member _.ReadAllBytes(path: string) =
        let n = files[path] in Array.sub n.Data 0 (int n.Length)

    /// Replaces a file's bytes (for damaging a log in tests).
    member _.WriteAllBytes(path: string, bytes: byte[]) =
        files[path] <-
            {
                Data = Array.copy bytes
                Length = int64 bytes.Length
                LockedBy = None
            }

    /// The names in a directory.
    member _.List(dir: string) = children dir

    interface IFileSystem with
        member _.OpenFile(path: string, mode: OpenMode) : IStorageFile =
            if dirs.Contains path then
                raise (IOException($"open {path}: is a directory"))

            if not (dirs.Contains(parent path)) then
                raise (DirectoryNotFoundException($"open {path}: no such directory"))

            let node =
                match mode, files.TryGetValue path with
                | OpenMode.CreateTruncate, (true, n) ->
                    n.Length <- 0L
                    n.Data <- [||]
                    n
                | OpenMode.CreateTruncate, _ ->
                    let n =
                        {
                            Data = [||]
                            Length = 0L
                            LockedBy = None
                        }

                    files[path] <- n
                    n
                | _, (true, n) -> n
                | _ -> raise (FileNotFoundException($"open {path}: no such file", path))

            let owner = obj ()
            let writable = mode <> OpenMode.Read
            let mutable closed = false

            { new IStorageFile with
                member _.Length = node.Length

                member _.Read(offset, buffer) =
                    let n = int (max 0L (min (int64 buffer.Length) (node.Length - offset)))

                    if n > 0 then
                        Span<byte>(node.Data, int offset, n).CopyTo(buffer)

                    n

                member _.Write(offset, data) =
                    if not writable then
                        raise (IOException($"write {path}: bad file descriptor"))

                    check "write" path
                    let ending = offset + int64 data.Length
                    ensure node ending
                    data.CopyTo(Span<byte>(node.Data, int offset, data.Length))
                    node.Length <- max node.Length ending

                member _.DataSync() =
                    check "fdatasync" path
                    syncs <- syncs + 1

                member _.Sync() =
                    check "fsync" path
                    syncs <- syncs + 1

                member _.Truncate(length) =
                    ensure node length

                    if length < node.Length then
                        Array.Clear(node.Data, int length, int (node.Length - length))

                    node.Length <- length

                member _.Preallocate(length) =
                    check "fallocate" path

                    if length > node.Length then
                        ensure node length
                        node.Length <- length

                member _.TryLock() =
                    match node.LockedBy with
                    | Some o when not (obj.ReferenceEquals(o, owner)) -> false
                    | _ ->
                        node.LockedBy <- Some owner
                        true

                member _.Dispose() =
                    if not closed then
                        closed <- true

                        match node.LockedBy with
                        | Some o when obj.ReferenceEquals(o, owner) -> node.LockedBy <- None
                        | _ -> ()
            }

        member _.FileExists path = files.ContainsKey path
        member _.DirectoryExists path = dirs.Contains path

        member _.ListDirectory path =
            if not (dirs.Contains path) then
                raise (DirectoryNotFoundException($"opendir {path}: no such directory"))

            children path :> IReadOnlyList<string>

        member _.CreateDirectory path =
            let rec make (p: string) =
                if not (dirs.Contains p) then
                    make (parent p)
                    dirs.Add p |> ignore

            make path

        member _.RemoveFile path =
            if not (files.Remove path) then
                raise (FileNotFoundException($"unlink {path}: no such file", path))

        member _.RemoveDirectoryRecursive path =
            let prefix = path + "/"

            for f in files.Keys |> Seq.filter (fun p -> p.StartsWith prefix) |> List.ofSeq do
                files.Remove f |> ignore

            for d in dirs |> Seq.filter (fun p -> p = path || p.StartsWith prefix) |> List.ofSeq do
                dirs.Remove d |> ignore

        member _.Rename(from, target) =
            match files.TryGetValue from with
            | true, n ->
                files.Remove from |> ignore
                files[target] <- n
            | _ when dirs.Contains from ->
                if dirs.Contains target then
                    if not (List.isEmpty (children target)) then
                        raise (IOException($"rename {from} -> {target}: directory not empty"))

                    dirs.Remove target |> ignore

                let prefix = from + "/"

                for f in files.Keys |> Seq.filter (fun p -> p.StartsWith prefix) |> List.ofSeq do
                    let n = files[f]
                    files.Remove f |> ignore
                    files[target + f.Substring from.Length] <- n

                for d in dirs |> Seq.filter (fun p -> p = from || p.StartsWith prefix) |> List.ofSeq do
                    dirs.Remove d |> ignore
                    dirs.Add(target + d.Substring from.Length) |> ignore
            | _ -> raise (FileNotFoundException($"rename {from}: no such file", from))

        member _.SyncDirectory path =
            if not (dirs.Contains path) then
                raise (DirectoryNotFoundException($"open {path}: no such directory"))

            check "fsync" path
            syncs <- syncs + 1
