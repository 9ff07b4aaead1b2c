/// Crash images as real directories: a simulated disk state written out for a driver to recover
/// from, what the image kept against the disk the process saw, and which images to try.
module Wal.Simulation.CrashImageDirectory

open System
open System.Diagnostics
open System.IO
open Wal.Model
open Wal.Oracle
open Wal.Oracle.DriverProcess
open Wal.Oracle.Trace

/// Whether every directory above `path` is there: a durable entry in a directory whose own
/// entry was lost is out of reach after the crash, as on a real disk.
let private reachable (disk: DiskState) (path: string) =
    let rec go (p: string) =
        let parent = Path.GetDirectoryName p

        match parent with
        | null
        | ""
        | "/" -> true
        | parent -> disk.Current.TryFind parent = Some DirNode && go parent

    go path

/// A disk state written into a real directory: its files and subdirectories as they are now
/// (those a lost directory entry cut off left out).
let materialize (disk: DiskState) (target: string) =
    Directory.CreateDirectory target |> ignore

    for KeyValue(path, node) in disk.Current do
        if path <> "/" && reachable disk path then
            let real = target + path

            match node with
            | DirNode -> Directory.CreateDirectory real |> ignore
            | FileNode inode ->
                let content = disk.Inodes[inode].Current
                use file = new FileStream(real, FileMode.Create, FileAccess.Write)
                file.Write(content.Bytes, 0, int (min content.Length (int64 content.Bytes.Length)))
                file.SetLength content.Length

/// What a crash image kept, file by file, against the disk a process saw when the power went.
let describeImage (before: DiskState) (after: DiskState) =
    let find (disk: DiskState) path =
        if reachable disk path then
            disk.Current.TryFind path
        else
            None

    let size (disk: DiskState) path =
        match find disk path with
        | Some(FileNode i) -> Some disk.Inodes[i].Current.Length
        | _ -> None

    let paths =
        Seq.append before.Current.Keys after.Current.Keys
        |> Seq.filter ((<>) "/")
        |> Seq.distinct
        |> Seq.sort

    [
        for p in paths ->
            match find before p, find after p with
            | Some DirNode, Some DirNode -> $"  {p}/"
            | Some DirNode, None -> $"  {p}/: lost (its directory entry was not durable)"
            | None, Some DirNode -> $"  {p}/: back (its removal was not durable)"
            | Some(FileNode _), None -> $"  {p}: lost (its directory entry was not durable)"
            | None, Some(FileNode _) ->
                $"  {p}: {size after p |> Option.defaultValue 0L} bytes, back (its removal or rename was not durable)"
            | _ ->
                let was = size before p |> Option.defaultValue 0L
                let kept = size after p |> Option.defaultValue 0L

                let same =
                    match find before p, find after p with
                    | Some(FileNode a), Some(FileNode b) ->
                        let x = before.Inodes[a].Current
                        let y = after.Inodes[b].Current

                        x.Length = y.Length
                        && (let bx = Array.zeroCreate<byte>(int x.Length)
                            let by = Array.zeroCreate<byte>(int y.Length)
                            Content.read x 0L (Span bx) |> ignore
                            Content.read y 0L (Span by) |> ignore
                            bx = by)
                    | _ -> false

                if same then
                    $"  {p}: {kept} bytes, all kept"
                elif kept = was then
                    $"  {p}: {kept} bytes, some of the last writes lost or torn"
                else
                    $"  {p}: {kept} of {was} bytes"
    ]
    |> String.concat "\n"

/// The images judged for a state: the harshest (everything pending lost) first, then the
/// enumeration, `bound` in all.
let imagesOf (disk: DiskState) (bound: int) (seed: int) =
    let harshest =
        {
            NamespaceKept = 0
            Files = CrashImage.undecided disk |> Map.map (fun _ _ -> KeptPrefix(0, 0))
            Lost = OldContents
        }

    let rest = CrashImage.enumerate disk 1 bound seed |> List.filter ((<>) harshest)

    harshest :: rest |> List.truncate bound
