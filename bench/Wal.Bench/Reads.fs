/// The read-path rows, measured in this process on logs the engine writes under the temp path:
/// ReadAll of 4 KiB entries against File.ReadAllBytes of the same files, RaftLog.Open against
/// reading its files, and GetEntry of random indexes from the page cache. Each pair runs in
/// ABBA order (reference, engine, engine, reference) after one untimed round that fills the
/// page cache and the JIT; each figure is the mean of its two timed runs.
[<RequireQualifiedAccess>]
module Wal.Bench.Reads

open System
open System.Diagnostics
open System.IO
open Wal

/// ReadAll of 4 KiB entries against reading the same files.
type ReadAllFiles =
    {
        Entries: int
        /// Bytes of records the engine wrote (what ReadAll decodes).
        RecordBytes: int64
        /// Bytes of the segment files (ReadAllBytes reads the preallocated tail too).
        FileBytes: int64
        ReadAllSeconds: float
        FilesSeconds: float
    }

/// GetEntry calls at random indexes, timed.
type Gets =
    {
        Seconds: float
        /// Bytes allocated per GetEntry beyond the returned entry's data array.
        BytesBeyondData: float
    }

/// RaftLog.Open against reading the log's files, then GetEntry on the open log: from mapped
/// segments (the default) and with a positioned read each (MapSegments = false).
type OpenAndGet =
    {
        Entries: int64
        FileBytes: int64
        OpenSeconds: float
        FilesSeconds: float
        Gets: int
        Mapped: Gets
        Positioned: Gets
        EntryBytes: int
    }

/// Writes a log of entries of entryBytes, perSave to a Save, until `total` entries or, when
/// untilBytes > 0, until the engine has written that many bytes; returns the entries written
/// and the bytes the engine wrote (its wal.bytes.written metric).
let private write (dir: string) (entryBytes: int) (perSave: int) (total: int64) (untilBytes: int64) =
    use written = new EngineCounter(WalMetrics.BytesWritten)
    use wal = WriteAheadLog.Create(dir, ReadOnlyMemory [| 1uy |])
    let payload = ReadOnlyMemory(Run.payload entryBytes)
    let batch = Array.zeroCreate<Entry> perSave
    let mutable index = 0UL

    while (if untilBytes > 0L then
               written.Total < untilBytes
           else
               int64 index < total) do
        for i in 0 .. batch.Length - 1 do
            index <- index + 1UL
            batch[i] <- Entry(1UL, index, payload)

        wal.Save(HardState(1UL, 1UL, index), ReadOnlySpan batch)

    int64 index, written.Total

let private segmentFiles (dir: string) =
    Directory.GetFiles(dir, "*.wal") |> Array.sort

/// Reads every file whole, as File.ReadAllBytes does; returns the bytes read.
let private readFiles (files: string array) =
    let mutable total = 0L

    for f in files do
        total <- total + int64 (File.ReadAllBytes f).Length

    total

let private seconds (f: unit -> 'a) =
    let clock = Stopwatch.StartNew()
    let result = f ()
    clock.Stop()
    clock.Elapsed.TotalSeconds, result

let private scratch (name: string) =
    Path.Combine(Path.GetTempPath(), $"wal-bench-{name}-{Guid.NewGuid():N}")

let private removing (dir: string) (f: unit -> 'a) =
    try
        f ()
    finally
        if Directory.Exists dir then
            Directory.Delete(dir, true)

/// ReadAll of `entries` 4 KiB entries (100 to a Save) against File.ReadAllBytes of the same files.
let readAllFiles (entries: int) =
    let dir = scratch "readall4k"

    removing dir (fun () ->
        let _, written = write dir 4096 100 (int64 entries) 0L
        let files = segmentFiles dir

        let readAll () =
            use wal = WriteAheadLog.OpenForRead(dir, Snapshot.Zero)
            (wal.ReadAll()).Entries.Count

        let fileBytes = readFiles files
        readAll () |> ignore
        let f1, _ = seconds (fun () -> readFiles files)
        let r1, _ = seconds readAll
        let r2, _ = seconds readAll
        let f2, _ = seconds (fun () -> readFiles files)

        {
            Entries = entries
            RecordBytes = written
            FileBytes = fileBytes
            ReadAllSeconds = (r1 + r2) / 2.0
            FilesSeconds = (f1 + f2) / 2.0
        })

/// RaftLog.Open on a log of about `bytes` bytes of 100-byte entries (1,000 to a Save) against
/// reading its files, then `gets` GetEntry calls at random indexes on one thread: on the open
/// log (mapped segments, the default), then on the log reopened with MapSegments = false.
let openAndGet (bytes: int64) (gets: int) =
    let dir = scratch "raftlog"
    let entryBytes = 100

    removing dir (fun () ->
        let entries, _ = write dir entryBytes 1000 0L bytes
        let files = segmentFiles dir
        let fileBytes = readFiles files

        let openLog () =
            let clock = Stopwatch.StartNew()
            let log = RaftLog.Open(dir, Snapshot.Zero)
            clock.Stop()
            clock.Elapsed.TotalSeconds, log

        (snd (openLog ())).Dispose()
        let f1, _ = seconds (fun () -> readFiles files)
        let o1, log1 = openLog ()
        log1.Dispose()
        let o2, log = openLog ()
        let f2, _ = seconds (fun () -> readFiles files)

        let random = Random 12
        let first = log.FirstIndex
        let span = log.LastIndex - first + 1UL

        let indexes =
            Array.init gets (fun _ -> first + uint64 (random.NextInt64(int64 span)))

        // The returned data is a byte array of entryBytes: 24 bytes of object header, method
        // table and length, then the bytes padded to 8. "Beyond the returned data" leaves it out.
        let dataArray = 24 + ((entryBytes + 7) / 8 * 8)

        let timeGets (log: RaftLog) =
            // Warm the JIT, the index's cache lines and the mappings; then the timed, measured calls.
            for i in 0 .. min 10000 (gets - 1) do
                log.GetEntry indexes[i] |> ignore

            let allocated = GC.GetAllocatedBytesForCurrentThread()
            let clock = Stopwatch.StartNew()
            let mutable sum = 0L

            for i in indexes do
                sum <- sum + int64 (log.GetEntry i).Data.Length

            clock.Stop()
            let perGet = float (GC.GetAllocatedBytesForCurrentThread() - allocated) / float gets

            if sum <> int64 gets * int64 entryBytes then
                failwith "GetEntry returned the wrong data"

            {
                Seconds = clock.Elapsed.TotalSeconds
                BytesBeyondData = perGet - float dataArray
            }

        let mapped =
            try
                timeGets log
            finally
                log.Dispose()

        let positioned =
            use log = RaftLog.Open(dir, Snapshot.Zero, WalOptions(MapSegments = false))
            timeGets log

        {
            Entries = entries
            FileBytes = fileBytes
            OpenSeconds = (o1 + o2) / 2.0
            FilesSeconds = (f1 + f2) / 2.0
            Gets = gets
            Mapped = mapped
            Positioned = positioned
            EntryBytes = entryBytes
        })
