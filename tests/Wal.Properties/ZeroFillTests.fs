/// WalOptions.ZeroFillSegments: a segment's preallocated space is written with zeros and synced
/// before the log appends into it (the first segment, each prepared one, the rest of the tail
/// on a write open). On the real disk, through a file system that records every write: the
/// fill happens where it should and only there, and the files hold the same bytes as a log
/// written without it, through cuts and a reopen, so etcd and every reader see no difference.
module Wal.Properties.ZeroFillTests

open System
open System.Collections.Concurrent
open System.IO
open Expecto
open Wal
open Wal.Storage
open Wal.Properties.Support

let private segmentBytes = 256L * 1024L

/// One file as the log opened it, and what was written to it through that handle.
type private Opened =
    {
        Path: string
        Mode: OpenMode
        mutable Written: int64
        mutable Zeros: int64
    }

/// The real disk, recording every file the log opens and the bytes written to it, all and zeros.
type private Recorder() =
    let opened = ConcurrentQueue<Opened>()

    member _.Opened = opened |> Seq.toList

    /// What was written through the handles opened at `path` (a .tmp path serves many files in turn).
    member _.At(path: string) =
        opened |> Seq.filter (fun o -> o.Path = path) |> Seq.toList

    member _.FileSystem =
        realDiskWith (fun path mode ->
            let f = LinuxFileSystem.Instance.OpenFile(path, mode)

            let o =
                {
                    Path = path
                    Mode = mode
                    Written = 0L
                    Zeros = 0L
                }

            opened.Enqueue o

            { new PassThroughFile(f) with
                override _.Write(offset, data) =
                    o.Written <- o.Written + int64 data.Length

                    if data.IndexOfAnyExcept(0uy) < 0 then
                        o.Zeros <- o.Zeros + int64 data.Length

                    f.Write(offset, data)
            }
            :> IStorageFile)

// Zero-ahead off, so what is zero-filled here is the option's doing alone (ZeroAheadTests has its own).
let private options (fs: IFileSystem) (zeroFill: bool) =
    WalOptions(
        SegmentSizeBytes = segmentBytes,
        FileSystem = fs,
        ZeroFillSegments = zeroFill,
        ZeroAheadBytes = 0,
        PrepareSegmentsInBackground = false
    )

let private entry (index: uint64) =
    Entry(1UL, index, ReadOnlyMemory(Array.init (100 + int (index % 500UL)) (fun j -> byte ((int index + j) % 251))))

/// Saves entries from..to, 20 a Save, each with its hard state.
let private save (wal: WriteAheadLog) (from: uint64) (upTo: uint64) =
    for first in from .. 20UL .. upTo do
        let batch = [| for i in first .. min upTo (first + 19UL) -> entry i |]
        wal.Save(HardState(1UL, 0UL, batch[batch.Length - 1].Index), ReadOnlySpan batch)

/// Creates a log of about 1.4 MB (several cuts at 256 KiB), closes it, opens it to write,
/// appends more and closes it again.
let private write (dir: string) (options: WalOptions) =
    do
        use wal = WriteAheadLog.Create(dir, mem "meta", options)
        save wal 1UL 3000UL

    do
        use wal = WriteAheadLog.Open(dir, Snapshot.Zero, options)
        wal.ReadAll() |> ignore
        save wal 3001UL 4000UL

/// Every segment file, by name, with its bytes.
let private contents (dir: string) =
    Directory.GetFiles(dir, "*.wal")
    |> Array.sort
    |> Array.map (fun f -> Path.GetFileName f, File.ReadAllBytes f)

let tests =
    testList
        "ZeroFillTests"
        [
            test "zero-filled segments hold the same bytes as fallocated ones, through cuts and a reopen" {
                use plain = new TempDir()
                use filled = new TempDir()
                let plainDir = Path.Combine(plain.Path, "wal")
                let filledDir = Path.Combine(filled.Path, "wal")
                write plainDir (options LinuxFileSystem.Instance false)
                write filledDir (options LinuxFileSystem.Instance true)
                let expected = contents plainDir
                Expect.isGreaterThan expected.Length 4 "several segments"
                let actual = contents filledDir
                Expect.equal (actual |> Array.map fst) (expected |> Array.map fst) "the same segments"

                for (name, bytes), (_, want) in Array.zip actual expected do
                    Expect.equal bytes.Length want.Length $"{name}'s length"
                    Expect.isTrue (bytes.AsSpan().SequenceEqual(ReadOnlySpan want)) $"{name}'s bytes"

                use wal = WriteAheadLog.OpenForRead(filledDir, Snapshot.Zero)
                let all = wal.ReadAll()
                Expect.equal all.Entries.Count 4000 "every entry reads back"
                Expect.sequenceEqual (all.Entries[3999].Data.ToArray()) ((entry 4000UL).Data.ToArray()) "the last entry"
            }

            test "the preallocated space of every segment, and the tail's on a write open, is written with zeros first" {
                let recorder = Recorder()
                use tmp = new TempDir()
                let dir = Path.Combine(tmp.Path, "wal")
                let opts = options recorder.FileSystem true

                do
                    use wal = WriteAheadLog.Create(dir, mem "meta", opts)
                    save wal 1UL 3000UL

                // Every file the log created (the first segment, and each one the pipeline
                // prepared) had its whole length written with zeros.
                let created =
                    recorder.Opened |> List.filter (fun o -> o.Mode = OpenMode.CreateTruncate)

                Expect.isGreaterThan created.Length 4 "several files were prepared"

                for o in created do
                    Expect.isGreaterThanOrEqual o.Zeros segmentBytes $"{o.Path} was zero-filled"

                // Open to write: the tail, read to its last record, is filled from there to its end.
                let tail = Directory.GetFiles(dir, "*.wal") |> Array.sort |> Array.last
                let dataEnd = int64 (dataEndOf (File.ReadAllBytes tail))

                do
                    use wal = WriteAheadLog.Open(dir, Snapshot.Zero, opts)
                    wal.ReadAll() |> ignore

                Expect.isGreaterThanOrEqual
                    (recorder.At tail |> List.sumBy (fun o -> o.Zeros))
                    (FileInfo(tail).Length - dataEnd)
                    "the tail's space after its last record was zero-filled"
            }

            test "without the option nothing is zero-filled: the log writes its records only" {
                let recorder = Recorder()
                use tmp = new TempDir()
                let dir = Path.Combine(tmp.Path, "wal")
                let opts = options recorder.FileSystem false

                do
                    use wal = WriteAheadLog.Create(dir, mem "meta", opts)
                    save wal 1UL 3000UL

                do
                    use wal = WriteAheadLog.Open(dir, Snapshot.Zero, opts)
                    wal.ReadAll() |> ignore

                Expect.isNonEmpty recorder.Opened "the log opened its files through the recorder"

                for o in recorder.Opened do
                    Expect.isLessThan o.Zeros (64L * 1024L) $"{o.Path} was not zero-filled"
            }

            test "a RaftLog opened with the option fills its tail too, and reads the same" {
                use tmp = new TempDir()
                let dir = Path.Combine(tmp.Path, "wal")

                do
                    use log = RaftLog.Create(dir, mem "meta", options LinuxFileSystem.Instance true)

                    log.Append(ReadOnlySpan [| for i in 1UL .. 2000UL -> entry i |], HardState(1UL, 0UL, 2000UL))

                let recorder = Recorder()

                do
                    use log = RaftLog.Open(dir, Snapshot.Zero, options recorder.FileSystem true)
                    Expect.equal (log.FirstIndex, log.LastIndex) (1UL, 2000UL) "the range"

                    Expect.sequenceEqual
                        ((log.GetEntry 1234UL).Data.ToArray())
                        ((entry 1234UL).Data.ToArray())
                        "an entry"

                let tail = Directory.GetFiles(dir, "*.wal") |> Array.sort |> Array.last

                Expect.isGreaterThanOrEqual
                    (recorder.At tail |> List.sumBy (fun o -> o.Zeros))
                    (FileInfo(tail).Length - int64 (dataEndOf (File.ReadAllBytes tail)))
                    "the tail was filled on open"
            }
        ]
