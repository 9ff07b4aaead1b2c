/// check-dir's segment reads, one segment ahead: while the model checks a segment, the next one
/// is read on another thread, so that copying the bytes out of the page cache (most of what `cat`
/// spends) overlaps the checking, as `cat | wc` overlaps its two processes. Two buffers at most:
/// the model lets a segment's bytes go before it asks for the next (Segments.scan), so the buffer
/// it gave back takes the segment after. Reading ahead changes no result: a segment is handed to
/// the model only when the model asks for it by name, and a read's error is raised then.
module Wal.Cli.SegmentReadAhead

open System
open System.IO
open Wal.Model
open Wal.Storage

/// Reads `name` (at most DirectoryCheck.maxSegmentBytes of it, and no further than the file's
/// real size) into the spare buffer when it is the segment's size, else into a new array. The
/// spare is passed in a cell that this empties, so that nothing holds an unused buffer.
let private load (fs: IFileSystem) (dir: string) (name: string) (spare: byte[] ref) =
    use file = fs.OpenFile(Path.Combine(dir, name), OpenMode.Read)
    let size = int (min file.Length DirectoryCheck.maxSegmentBytes)
    let given = spare.Value
    spare.Value <- null

    let bytes =
        if not (isNull given) && given.Length = size then
            given
        else
            // Segments cut at a record boundary differ by a few bytes: the spare buffer is let go
            // before the next is allocated, or each size would stay on the large-object heap. The
            // read fills the new one, so it is not zeroed first.
            GC.Collect()
            GC.AllocateUninitializedArray<byte> size

    let n = file.Read(0L, bytes.AsSpan())
    if n = bytes.Length then bytes else bytes[.. n - 1]

/// A read on a thread of its own (a thread-pool worker spins for a while after its work, which
/// two cores cannot spare): its bytes, or the error it met, raised where they are taken.
[<Sealed>]
type private Ahead(fs: IFileSystem, dir: string, name: string, spare: byte[] ref) =
    let mutable bytes: byte[] = null
    let mutable error: exn = null

    let thread =
        Threading.Thread(
            (fun () ->
                try
                    bytes <- load fs dir name spare
                with e ->
                    error <- e),
            IsBackground = true
        )

    do thread.Start()

    /// The segment read.
    member _.Name = name

    /// Waits for the read: its bytes, or its error raised.
    member _.Take() =
        thread.Join()

        if isNull error then
            bytes
        else
            Runtime.ExceptionServices.ExceptionDispatchInfo.Throw error
            null

    /// Waits for the read, dropping what it gives.
    member _.Wait() = thread.Join()

/// The reads of one check-dir run over the segment files `names` of `dir`.
[<Sealed>]
type Reader(fs: IFileSystem, dir: string, names: string list) =
    /// Each segment's successor in the model's order.
    let after =
        names
        |> List.choose (fun n -> DirectoryCheck.segmentName n |> Option.map (fun (sequence, _) -> sequence, n))
        |> List.sortBy fst
        |> List.map snd
        |> List.pairwise
        |> Map.ofList

    /// The segment being read ahead.
    let mutable ahead: Ahead option = None
    /// The bytes last handed to the model.
    let mutable handed: byte[] = null

    /// The bytes of segment `name`; the model has let go of the bytes it was handed before.
    member _.Read(name: string) : byte[] =
        let mutable spare = handed
        handed <- null

        let bytes =
            match ahead with
            | Some read when read.Name = name ->
                ahead <- None
                read.Take()
            | _ ->
                // Out of order (never, when the names are as the model sorts them): the read ahead,
                // if any, is waited for and dropped, and this one is read here.
                ahead |> Option.iter (fun read -> read.Wait())
                ahead <- None
                let cell = ref spare
                spare <- null
                load fs dir name cell

        handed <- bytes

        match after.TryFind name with
        | Some next ->
            let cell = ref (if Object.ReferenceEquals(spare, bytes) then null else spare)
            spare <- null
            ahead <- Some(Ahead(fs, dir, next, cell))
        | None -> ()

        bytes

    interface IDisposable with
        /// Waits for a read ahead the model never asked for (it stopped at a damaged record).
        member _.Dispose() =
            ahead |> Option.iter (fun read -> read.Wait())
            ahead <- None
