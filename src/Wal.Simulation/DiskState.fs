// The simulated disk's state: file contents, inodes and the namespace, each with what is durable
// beside what a process sees now, in the manner of ALICE and CrashMonkey: file data is durable
// only after fdatasync/fsync of the file, and a directory's entries only after fsync of the
// directory. The state is an immutable value, so a crash state is captured for free after every
// call, and crash images (CrashImage.fs) are built from any captured state, as often as wanted.
namespace Wal.Simulation

open System
open System.IO

/// A file's bytes. Bytes past `Bytes.Length` (and below `Length`) read as zeros, so a
/// preallocated segment costs nothing until written. `Bytes` is never changed in place.
[<Struct>]
type Content = { Bytes: byte[]; Length: int64 }

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

/// Paths on the simulated disk: absolute, '/'-separated, the root is "/".
[<RequireQualifiedAccess>]
module internal DiskPath =
    /// The directory a path is in.
    let parent (path: string) =
        match Path.GetDirectoryName path with
        | null
        | "" -> "/"
        | d -> d

    /// Whether `path` lies below the directory `prefix` (at any depth, not the directory itself).
    let isUnder (prefix: string) (path: string) =
        path.Length > prefix.Length
        && path.StartsWith(prefix, StringComparison.Ordinal)
        && path[prefix.Length] = '/'

/// File contents, as values.
[<RequireQualifiedAccess>]
module Content =
    /// A file with no bytes.
    let empty = { Bytes = [||]; Length = 0L }

    /// Reads from `offset` into `dst`; returns how many bytes were read (fewer at the end).
    let read (c: Content) (offset: int64) (dst: Span<byte>) =
        let n = int (max 0L (min (int64 dst.Length) (c.Length - offset)))
        let stored = int (max 0L (min (int64 n) (int64 c.Bytes.Length - offset)))

        if stored > 0 then
            ReadOnlySpan<byte>(c.Bytes, int offset, stored).CopyTo(dst)

        if n > stored then
            dst.Slice(stored, n - stored).Clear()

        n

    /// The contents with `data` written at `offset`, growing the file when it ends later.
    /// Writing no bytes changes nothing, past the end too (as pwrite of 0 bytes).
    let write (c: Content) (offset: int64) (data: ReadOnlySpan<byte>) =
        if data.IsEmpty then
            c
        else
            let ending = offset + int64 data.Length
            let bytes = Array.zeroCreate<byte>(int (max (int64 c.Bytes.Length) ending))
            Array.blit c.Bytes 0 bytes 0 c.Bytes.Length
            data.CopyTo(Span<byte>(bytes, int offset, data.Length))

            {
                Bytes = bytes
                Length = max c.Length ending
            }

    /// The contents cut or extended (with zeros) to `length`.
    let resize (c: Content) (length: int64) =
        if length >= c.Length then
            { c with Length = length }
        else
            {
                Bytes = Array.sub c.Bytes 0 (int (min length (int64 c.Bytes.Length)))
                Length = length
            }

    /// The contents after a data change.
    let apply (c: Content) (op: DataOp) =
        match op with
        | Write(offset, data) -> write c offset (ReadOnlySpan data)
        | Resize length -> resize c length

/// Namespace changes: where they are committed and what they do.
[<RequireQualifiedAccess>]
module NamespaceOp =
    /// The directories whose fsync commits a change.
    let touches (op: NamespaceOp) =
        match op with
        | MakeDir p
        | Link(p, _)
        | Unlink p
        | RemoveTree p -> [ DiskPath.parent p ]
        | Move(s, t) -> [ DiskPath.parent s; DiskPath.parent t ]

    /// Applies a namespace change to a namespace.
    let apply (ns: Map<string, Node>) (op: NamespaceOp) =
        match op with
        | MakeDir p -> ns.Add(p, DirNode)
        | Link(p, i) -> ns.Add(p, FileNode i)
        | Unlink p -> ns.Remove p
        | RemoveTree p -> ns |> Map.filter (fun k _ -> k <> p && not (DiskPath.isUnder p k))
        | Move(s, t) ->
            match ns.TryFind s with
            | None -> ns
            | Some node ->
                let moved =
                    ns
                    |> Map.filter (fun k _ -> DiskPath.isUnder s k)
                    |> Map.toList
                    |> List.map (fun (k, v) -> t + k.Substring s.Length, v)

                let cleared =
                    ns
                    |> Map.filter (fun k _ ->
                        k <> s && not (DiskPath.isUnder s k) && k <> t && not (DiskPath.isUnder t k))

                (cleared.Add(t, node), moved) ||> List.fold (fun m (k, v) -> m.Add(k, v))

/// Disk states.
[<RequireQualifiedAccess>]
module DiskState =
    /// A disk holding only the root directory, durably.
    let empty: DiskState =
        {
            Inodes = Map.empty
            Durable = Map.ofList [ "/", DirNode ]
            Current = Map.ofList [ "/", DirNode ]
            PendingNamespace = []
            NextInode = 1
        }
