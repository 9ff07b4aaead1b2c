/// WalOptions.ZeroAheadBytes: an fdatasync that must commit new space anyway also writes zeros
/// over the space ahead, so the Saves after it find written space. On the real disk, through a
/// file system that records every write and fdatasync: the zeros land only past the records and
/// within the file, small Saves commit new space about once a zero-ahead instead of nearly every
/// Save, large Saves take no zeros along, a failed zero write fails the log closed, and the
/// files hold the same bytes as without it.
module Wal.Properties.ZeroAheadTests

open System
open System.Collections.Concurrent
open System.IO
open Expecto
open Wal
open Wal.Storage
open Wal.Properties.Support

let private segmentBytes = 256L * 1024L
let private ahead = 64 * 1024

/// What a handle saw, in order.
type private Event =
    /// A write at Offset of Length bytes, all zeros or not, into a file of FileLength bytes.
    | Wrote of Offset: int64 * Length: int64 * Zeros: bool * FileLength: int64
    | Synced

/// One file as the log opened it: its path, the end of the records it held when opened, and what
/// happened through the handle.
type private Opened =
    {
        Path: string
        DataAtOpen: int64
        Events: ConcurrentQueue<Event>
    }

/// The real disk, recording what each handle the log opens writes and syncs. `failZeroWrite n`
/// makes the n-th write of zeros (counting from 1, over every handle) throw EIO instead; `converts`,
/// when given, is the answer to whether preallocated space needs converting.
type private Recorder(?failZeroWrite: int, ?converts: bool) =
    let opened = ConcurrentQueue<Opened>()
    let mutable zeroWrites = 0

    member _.Opened = opened |> Seq.toList

    member _.FileSystem =
        realDiskAnswering converts (fun path mode ->
            let existing =
                if mode = OpenMode.CreateTruncate || not (File.Exists path) then
                    0L
                else
                    int64 (dataEndOf (File.ReadAllBytes path))

            let f = LinuxFileSystem.Instance.OpenFile(path, mode)

            let o =
                {
                    Path = path
                    DataAtOpen = existing
                    Events = ConcurrentQueue()
                }

            opened.Enqueue o

            { new PassThroughFile(f) with
                override _.Write(offset, data) =
                    let zeros = data.IndexOfAnyExcept(0uy) < 0

                    if zeros then
                        zeroWrites <- zeroWrites + 1

                        if Some zeroWrites = failZeroWrite then
                            raise (IOException("Input/output error (planted)", 5))

                    o.Events.Enqueue(Wrote(offset, int64 data.Length, zeros, f.Length))
                    f.Write(offset, data)

                override _.DataSync() =
                    f.DataSync()
                    o.Events.Enqueue Synced
            }
            :> IStorageFile)

/// What a handle's events show: the zero writes, how many fdatasyncs there were, and how many of
/// them carried records into space not yet written (each commits a conversion through the
/// journal). Fails the test when a zero write lands below a record written before it or past the
/// file's end.
type private Judged =
    {
        ZeroBytes: int64
        Syncs: int
        CommittingSyncs: int
        DataBytes: int64
    }

let private judge (o: Opened) =
    let mutable dataEnd = o.DataAtOpen
    let mutable writtenTo = o.DataAtOpen
    let mutable windowEnd = 0L

    let mutable judged =
        {
            ZeroBytes = 0L
            Syncs = 0
            CommittingSyncs = 0
            DataBytes = 0L
        }

    // The written space as it stood before this sync's window began.
    let mutable writtenAtWindow = writtenTo

    for e in o.Events do
        match e with
        | Wrote(offset, length, true, fileLength) ->
            Expect.isGreaterThanOrEqual
                offset
                dataEnd
                $"{o.Path}: zeros at {offset}, past the records (ending at {dataEnd})"

            Expect.isLessThanOrEqual
                (offset + length)
                fileLength
                $"{o.Path}: zeros at {offset}+{length} stay within the file ({fileLength} bytes)"

            writtenTo <- max writtenTo (offset + length)

            judged <-
                { judged with
                    ZeroBytes = judged.ZeroBytes + length
                }
        | Wrote(offset, length, false, _) ->
            dataEnd <- max dataEnd (offset + length)
            windowEnd <- max windowEnd (offset + length)

            judged <-
                { judged with
                    DataBytes = judged.DataBytes + length
                }
        | Synced ->
            let committing = windowEnd > writtenAtWindow

            judged <-
                { judged with
                    Syncs = judged.Syncs + 1
                    CommittingSyncs = judged.CommittingSyncs + (if committing then 1 else 0)
                }

            writtenTo <- max writtenTo dataEnd
            writtenAtWindow <- writtenTo
            windowEnd <- 0L

    judged

let private options (fs: IFileSystem) (zeroAhead: int) =
    WalOptions(
        SegmentSizeBytes = segmentBytes,
        FileSystem = fs,
        ZeroAheadBytes = zeroAhead,
        PrepareSegmentsInBackground = false
    )

let private entry (size: int) (index: uint64) =
    Entry(1UL, index, ReadOnlyMemory(Array.init size (fun j -> byte ((int index + j) % 251))))

/// Saves entries from..upTo, `perSave` a Save, each Save with its hard state.
let private saveRange (wal: WriteAheadLog) (size: int) (perSave: int) (from: uint64) (upTo: uint64) =
    for first in from .. uint64 perSave .. upTo do
        let batch =
            [| for i in first .. min upTo (first + uint64 perSave - 1UL) -> entry size i |]

        wal.Save(HardState(1UL, 0UL, batch[batch.Length - 1].Index), ReadOnlySpan batch)

/// A log of small Saves (5 x 300 B), then large ones (40 x 600 B), then small again, through
/// cuts at 256 KiB, closed, opened to write, and appended to again.
let private write (dir: string) (options: WalOptions) =
    do
        use wal = WriteAheadLog.Create(dir, mem "meta", options)
        saveRange wal 300 5 1UL 1500UL
        saveRange wal 600 40 1501UL 2500UL
        saveRange wal 300 5 2501UL 3000UL

    do
        use wal = WriteAheadLog.Open(dir, Snapshot.Zero, options)
        wal.ReadAll() |> ignore
        saveRange wal 300 5 3001UL 3500UL

/// Every segment file, by name, with its bytes.
let private contents (dir: string) =
    Directory.GetFiles(dir, "*.wal")
    |> Array.sort
    |> Array.map (fun f -> Path.GetFileName f, File.ReadAllBytes f)

/// Small Saves only (5 x 300 B, about 1.6 KB each), through cuts; what each handle saw.
let private smallSaves (zeroAhead: int) =
    let recorder = Recorder()
    use tmp = new TempDir()
    let dir = Path.Combine(tmp.Path, "wal")

    do
        use wal =
            WriteAheadLog.Create(dir, mem "meta", options recorder.FileSystem zeroAhead)

        saveRange wal 300 5 1UL 4000UL

    recorder.Opened |> List.map judge

let tests =
    testList
        "ZeroAheadTests"
        [
            test
                "the files hold the same bytes with zero-ahead as without, through cuts, Saves of both sizes and a reopen" {
                use tmp = new TempDir()

                let written zeroAhead =
                    let dir = Path.Combine(tmp.Path, $"wal-{zeroAhead}")
                    write dir (options LinuxFileSystem.Instance zeroAhead)
                    contents dir

                let expected = written 0
                Expect.isGreaterThan expected.Length 4 "several segments"

                for zeroAhead in [ WalOptions.DefaultZeroAheadBytes; ahead; 4096; 64 ] do
                    let actual = written zeroAhead

                    Expect.equal
                        (actual |> Array.map fst)
                        (expected |> Array.map fst)
                        $"the same segments ({zeroAhead})"

                    for (name, bytes), (_, want) in Array.zip actual expected do
                        Expect.equal bytes.Length want.Length $"{name}'s length ({zeroAhead})"
                        Expect.isTrue (bytes.AsSpan().SequenceEqual(ReadOnlySpan want)) $"{name}'s bytes ({zeroAhead})"

                use wal =
                    WriteAheadLog.OpenForRead(Path.Combine(tmp.Path, $"wal-{ahead}"), Snapshot.Zero)

                let all = wal.ReadAll()
                Expect.equal all.Entries.Count 3500 "every entry reads back"
            }

            test "small Saves take zeros along past their records, and commit new space about once a zero-ahead" {
                let withZeros = smallSaves ahead
                let without = smallSaves 0
                Expect.isGreaterThan withZeros.Length 4 "several files"

                let data = withZeros |> List.sumBy (fun j -> j.DataBytes)
                let zeros = withZeros |> List.sumBy (fun j -> j.ZeroBytes)
                let committing = withZeros |> List.sumBy (fun j -> j.CommittingSyncs)
                let syncs = withZeros |> List.sumBy (fun j -> j.Syncs)
                // Each zero-ahead spares the Saves that fit in it; each segment's header sync commits once.
                let bound = int (data / int64 ahead) + 2 * withZeros.Length
                Expect.isGreaterThan zeros (data / 2L) "zeros were written ahead of about all the records"
                Expect.isLessThanOrEqual committing bound $"fdatasyncs committing new space, of {syncs}"

                // Without it, nearly every Save commits new space: the measure above is not vacuous.
                let committingWithout = without |> List.sumBy (fun j -> j.CommittingSyncs)
                Expect.equal (without |> List.sumBy (fun j -> j.ZeroBytes)) 0L "no zeros without zero-ahead"
                Expect.isGreaterThan committingWithout (4 * bound) "without zero-ahead, nearly every Save commits"
            }

            test
                "Saves of more than a sixteenth of ZeroAheadBytes take no zeros along, and small ones after them do again" {
                let recorder = Recorder()
                use tmp = new TempDir()
                let dir = Path.Combine(tmp.Path, "wal")
                // 10 x 500 B is about 5.2 KB a Save, over 64 KiB / 16.
                use wal = WriteAheadLog.Create(dir, mem "meta", options recorder.FileSystem ahead)

                let zeroBytes () =
                    recorder.Opened |> List.sumBy (fun o -> (judge o).ZeroBytes)

                // The header's sync, at Create, takes one zero-ahead along: no Save has told the
                // Saves' size yet.
                let atCreate = zeroBytes ()
                Expect.equal atCreate (int64 ahead) "one zero-ahead at Create"
                saveRange wal 500 10 1UL 1000UL
                Expect.equal (zeroBytes ()) atCreate "large Saves wrote no zeros"
                saveRange wal 300 2 1001UL 1400UL
                Expect.isGreaterThan (zeroBytes ()) atCreate "small Saves after them took zeros along again"
            }

            test "large Saves through cuts and a close write no zeros past what Create's header took along" {
                let recorder = Recorder()
                use tmp = new TempDir()
                let dir = Path.Combine(tmp.Path, "wal")

                do
                    use wal = WriteAheadLog.Create(dir, mem "meta", options recorder.FileSystem ahead)
                    saveRange wal 500 10 1UL 2000UL
                    // One small Save last: it goes by the large one before it, and the close after
                    // it, which syncs nothing new, must not take its size as the Saves'.
                    saveRange wal 300 2 2001UL 2002UL

                let files = recorder.Opened
                Expect.isGreaterThan files.Length 4 "several files"

                // A cut's header sync goes by the Saves before it, not by its own few bytes; and a
                // close, which syncs nothing new, takes nothing along (it once did, after a cut).
                for o in List.tail files do
                    Expect.equal (judge o).ZeroBytes 0L $"{o.Path}: no zeros"
            }

            test "on a file system whose preallocated space needs no conversion, no zeros are written" {
                // The recorder's disk, saying what btrfs, ZFS or tmpfs would.
                let recorder = Recorder(converts = false)
                let noConversion = recorder.FileSystem

                use tmp = new TempDir()
                let dir = Path.Combine(tmp.Path, "wal")

                do
                    use wal = WriteAheadLog.Create(dir, mem "meta", options noConversion ahead)
                    saveRange wal 300 5 1UL 2000UL

                do
                    use wal = WriteAheadLog.Open(dir, Snapshot.Zero, options noConversion ahead)
                    wal.ReadAll() |> ignore
                    saveRange wal 300 5 2001UL 2500UL

                Expect.isGreaterThan recorder.Opened.Length 3 "several files"

                for o in recorder.Opened do
                    Expect.equal (judge o).ZeroBytes 0L $"{o.Path}: no zeros"
            }

            test "the real file system says ext4 and XFS convert preallocated space, and procfs does not" {
                let fs = LinuxFileSystem.Instance :> IFileSystem
                Expect.isFalse (fs.ConvertsPreallocatedSpace "/proc") "procfs"
                // The temporary directory's file system, from the mount table.
                use tmp = new TempDir()
                let full = Path.GetFullPath tmp.Root

                let fsType =
                    File.ReadAllLines "/proc/self/mountinfo"
                    |> Array.choose (fun line ->
                        let parts = line.Split ' '
                        let dash = Array.IndexOf(parts, "-")
                        let mount = parts[4].Replace("\\040", " ")

                        if dash > 4 && (full = mount || full.StartsWith(mount.TrimEnd '/' + "/")) then
                            Some(mount.Length, parts[dash + 1])
                        else
                            None)
                    |> Array.maxBy fst
                    |> snd

                Expect.equal
                    (fs.ConvertsPreallocatedSpace full)
                    (fsType = "ext4" || fsType = "xfs")
                    $"{full} is on {fsType}"
            }

            test "a failed zero write fails the Save and the log, and loses nothing acknowledged" {
                for failAt in [ 2; 3; 5 ] do
                    let recorder = Recorder(failAt)
                    use tmp = new TempDir()
                    let dir = Path.Combine(tmp.Path, "wal")
                    let opts = options recorder.FileSystem ahead
                    let mutable acknowledged = 0UL
                    let mutable failure = None

                    do
                        use wal = WriteAheadLog.Create(dir, mem "meta", opts)

                        try
                            for first in 1UL .. 5UL .. 5000UL do
                                let batch = [| for i in first .. first + 4UL -> entry 300 i |]
                                wal.Save(HardState(1UL, 0UL, first + 4UL), ReadOnlySpan batch)
                                acknowledged <- first + 4UL
                        with :? WalException as ex ->
                            failure <- Some ex.Kind

                        Expect.equal failure (Some WalErrorKind.Io) $"the Save that needed the zeros failed ({failAt})"

                        Expect.equal
                            (errorKind (fun () ->
                                wal.Save(HardState(1UL, 0UL, 1UL), ReadOnlySpan [| entry 10 (acknowledged + 1UL) |])))
                            (Some WalErrorKind.Failed)
                            "and the log takes no more writes"

                    use wal = WriteAheadLog.OpenForRead(dir, Snapshot.Zero)
                    let all = wal.ReadAll()
                    Expect.isGreaterThan acknowledged 0UL "some Saves were acknowledged first"

                    Expect.isGreaterThanOrEqual
                        (uint64 all.Entries.Count)
                        acknowledged
                        "every acknowledged entry is there"

                    for i in 0 .. int acknowledged - 1 do
                        Expect.sequenceEqual
                            (all.Entries[i].Data.ToArray())
                            ((entry 300 (uint64 i + 1UL)).Data.ToArray())
                            $"entry {i + 1}"
            }
        ]
