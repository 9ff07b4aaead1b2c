/// The tools' file reads, a few chunks ahead: a file opened for reading is read from its start on
/// a thread of its own, in chunks of 1 MiB (at most four waiting), from its first read on. The
/// engine reads a segment front to back, so its reads are then copies out of chunks already read,
/// and copying the bytes out of the page cache (most of what `cat` spends) overlaps the engine's
/// decoding, as `cat | wc` overlaps its two processes. A read the chunks do not serve (another
/// offset, past the length the file had when opened) goes to the file itself, and a read's error
/// is raised by the read that reaches it: the bytes and errors are the file's either way.
module Wal.Cli.ReadAheadFileSystem

open System
open System.Collections.Concurrent
open System.Threading
open Wal.Storage

/// Bytes read at an offset of the file, or the error the read met there.
[<NoEquality; NoComparison>]
type private Chunk =
    {
        Offset: int64
        Bytes: byte[]
        Count: int
        Error: exn
    }

[<Literal>]
let private ChunkBytes = 1048576

/// A file opened for reading, read ahead from its first read on. `spares` holds the buffers
/// the reads are done with, shared by the files of one file system: the engine reads them one
/// after another, so a few buffers serve a log of any size.
[<Sealed>]
type private ReadAheadFile(inner: IStorageFile, spares: ConcurrentQueue<byte[]>) =
    let length = inner.Length
    let chunks = new BlockingCollection<Chunk>(4)
    let stop = new CancellationTokenSource()
    let mutable thread: Thread = null
    /// The chunk reads are served from, and whether the thread has no more.
    let mutable current: Chunk option = None
    let mutable exhausted = false

    let readAhead () =
        try
            try
                let mutable offset = 0L

                while offset < length do
                    let buffer =
                        match spares.TryDequeue() with
                        | true, b -> b
                        | _ -> GC.AllocateUninitializedArray<byte> ChunkBytes

                    let want = int (min (int64 ChunkBytes) (length - offset))

                    let chunk =
                        try
                            let n = inner.Read(offset, buffer.AsSpan(0, want))

                            {
                                Offset = offset
                                Bytes = buffer
                                Count = n
                                Error = null
                            }
                        with e ->
                            {
                                Offset = offset
                                Bytes = buffer
                                Count = 0
                                Error = e
                            }

                    chunks.Add(chunk, stop.Token)
                    // A short read is the file's end (it was cut), an error stops the reading.
                    offset <-
                        if chunk.Count = want && isNull chunk.Error then
                            offset + int64 want
                        else
                            length
            with :? OperationCanceledException ->
                ()
        finally
            chunks.CompleteAdding()

    /// The next chunk in order, if the thread read one.
    let next () =
        if exhausted then
            None
        else
            if isNull thread then
                thread <- Thread(ThreadStart readAhead, IsBackground = true)
                thread.Start()

            let mutable chunk = Unchecked.defaultof<Chunk>

            if chunks.TryTake(&chunk, Timeout.Infinite) then
                Some chunk
            else
                exhausted <- true
                None

    interface IStorageFile with
        member _.Length = length

        member _.Read(offset: int64, buffer: Span<byte>) =
            let mutable total = 0
            let mutable serving = true

            while serving && total < buffer.Length do
                let at = offset + int64 total

                match current with
                | Some c when isNull c.Error && at >= c.Offset && at < c.Offset + int64 c.Count ->
                    let from = int (at - c.Offset)
                    let n = min (c.Count - from) (buffer.Length - total)
                    c.Bytes.AsSpan(from, n).CopyTo(buffer.Slice total)
                    total <- total + n

                    // The engine need not read past a full segment's last record: the file's
                    // last chunk is let go when its last byte is read.
                    if at + int64 n = length && from + n = c.Count then
                        current <- None
                        spares.Enqueue c.Bytes
                | Some c when isNull c.Error && at = c.Offset + int64 c.Count ->
                    current <- None
                    spares.Enqueue c.Bytes
                    current <- next ()
                | None when at = 0L && isNull thread -> current <- next ()
                | Some c when not (isNull c.Error) && at = c.Offset ->
                    Runtime.ExceptionServices.ExceptionDispatchInfo.Throw c.Error
                | _ -> serving <- false

            if total < buffer.Length then
                // Not read ahead: the file's own read serves the rest.
                total + inner.Read(offset + int64 total, buffer.Slice total)
            else
                total

        member _.Write(offset, data) = inner.Write(offset, data)
        member _.DataSync() = inner.DataSync()
        member _.Sync() = inner.Sync()
        member _.Truncate length = inner.Truncate length
        member _.Preallocate length = inner.Preallocate length
        member _.TryLock() = inner.TryLock()

    interface IDisposable with
        member _.Dispose() =
            if not (isNull thread) then
                stop.Cancel()
                thread.Join()

            current <- None
            chunks.Dispose()
            stop.Dispose()
            inner.Dispose()

/// `inner` with files opened for reading read ahead; everything else goes to `inner` as it is.
[<Sealed>]
type ReadAhead(inner: IFileSystem) =
    let spares = ConcurrentQueue<byte[]>()

    interface IFileSystem with
        member _.OpenFile(path, mode) =
            let file = inner.OpenFile(path, mode)

            if mode = OpenMode.Read then
                new ReadAheadFile(file, spares) :> IStorageFile
            else
                file

        member _.FileExists path = inner.FileExists path
        member _.DirectoryExists path = inner.DirectoryExists path
        member _.ListDirectory path = inner.ListDirectory path
        member _.CreateDirectory path = inner.CreateDirectory path
        member _.RemoveFile path = inner.RemoveFile path
        member _.RemoveDirectoryRecursive path = inner.RemoveDirectoryRecursive path
        member _.Rename(from, ``to``) = inner.Rename(from, ``to``)
        member _.ResolveLinks path = inner.ResolveLinks path
        member _.SyncDirectory path = inner.SyncDirectory path
