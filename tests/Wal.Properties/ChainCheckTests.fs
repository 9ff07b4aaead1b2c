/// ReadAll and RaftLog.Open of a log large enough (16 MiB or more) to use a second core: RaftLog.Open
/// replays without the CRC while a Reading.ChainCheck checks the chain on another thread, and
/// ReadAll's payload chunks are faulted in ahead by a Reading.ChunkFeed. On the real disk, 28 MB
/// in segments of 4 MB. Each outcome is compared with the same call through a plain file system
/// (the real one behind an IFileSystem of its own, whose files neither map nor take reads from
/// two threads), which reads on one thread as before: a sound log gives the same entries, and
/// the writer goes on with the same chain (a later ReadAll accepts what it appended); a flipped
/// byte in the first, a middle and the last segment, a broken chain value at a later segment's
/// head and a torn tail give the same error, message and all, in write mode and read-only.
module Wal.Properties.ChainCheckTests

open System
open System.IO
open Expecto
open Wal
open Wal.Storage
open Wal.Properties.Support

/// The real file system, plainly: its files are not IMappableFile, so no second thread reads them and nothing maps them.
let private plain =
    realDiskWith (fun path mode -> new PassThroughFile(LinuxFileSystem.Instance.OpenFile(path, mode)) :> IStorageFile)

let private twoCores = WalOptions(SegmentSizeBytes = 4_000_000L)

// Never split: a plugged-in file system's files are read split in sequence past SplitOpenBytes.
let private oneThread =
    WalOptions(SegmentSizeBytes = 4_000_000L, FileSystem = plain, SplitOpenBytes = Int64.MaxValue)

let private payload (index: uint64) =
    Array.init (200 + int (index % 300UL)) (fun j -> byte ((int index * 13 + j) % 251))

/// Writes about 28 MB of entries (term 1, indexes 1..n) through a RaftLog, then closes it.
let private write (dir: string) =
    use log = RaftLog.Create(dir, mem "meta", twoCores)
    let mutable index = 0UL

    while index < 80_000UL do
        let batch =
            Array.init 500 (fun k ->
                Entry(1UL, index + uint64 k + 1UL, ReadOnlyMemory(payload (index + uint64 k + 1UL))))

        index <- index + 500UL
        log.Append(ReadOnlySpan batch, HardState(1UL, 1UL, index))

    index

let private segments (dir: string) =
    Directory.GetFiles(dir, "*.wal") |> Array.sort

/// An outcome as a comparable value: the error's kind and message, or what was read.
let private outcome (f: unit -> string) =
    try
        Ok(f ())
    with :? WalException as ex ->
        Error(ex.Kind, ex.Message)

/// ReadAll after OpenForRead (nothing is written), summed up.
let private readOnly (options: WalOptions) (dir: string) =
    outcome (fun () ->
        use wal = WriteAheadLog.OpenForRead(dir, Snapshot.Zero, options)
        let all = wal.ReadAll()

        let last =
            if all.Entries.Count > 0 then
                all.Entries[all.Entries.Count - 1].Index
            else
                0UL

        let digest =
            all.Entries
            |> Seq.fold
                (fun acc e ->
                    let s = e.Data.Span

                    let ends =
                        if s.Length > 0 then
                            int64 s[0] * 257L + int64 s[s.Length - 1]
                        else
                            0L

                    acc * 31L + int64 e.Term + int64 e.Index + int64 s.Length + ends)
                17L

        $"{all.Entries.Count} entries to {last}, digest {digest}, state {all.State}")

/// RaftLog.Open, summed up (it cuts nothing off a sound log; on damage it fails before writing).
let private opened (options: WalOptions) (dir: string) =
    outcome (fun () ->
        use log = RaftLog.Open(dir, Snapshot.Zero, options)
        $"{log.FirstIndex}..{log.LastIndex}, state {log.HardState}")

/// ReadAll after Open (write mode), which fails on damage before it writes anything.
let private readWrite (options: WalOptions) (dir: string) =
    outcome (fun () ->
        use wal = WriteAheadLog.Open(dir, Snapshot.Zero, options)
        $"{(wal.ReadAll()).Entries.Count} entries")

/// Flips one byte of `file` at `offset`.
let private flip (file: string) (offset: int64) =
    use f = new FileStream(file, FileMode.Open, FileAccess.ReadWrite)
    f.Position <- offset
    let b = f.ReadByte()
    f.Position <- offset
    f.WriteByte(byte (b ^^^ 0x40))

let private lastSegment (files: string array) = files[files.Length - 1]

let private sameVerdicts (dir: string) =
    let expected = readOnly oneThread dir
    Expect.equal (readOnly twoCores dir) expected "ReadAll after OpenForRead"
    let expected = opened oneThread dir
    Expect.equal (opened twoCores dir) expected "RaftLog.Open"
    let expected = readWrite oneThread dir
    Expect.equal (readWrite twoCores dir) expected "ReadAll after Open"

let tests =
    testList
        "ChainCheckTests"
        [
            test "a sound large log reads the same on two cores, and the writer goes on with the right chain" {
                use tmp = new TempDir()
                let last = write tmp.Path
                Expect.isGreaterThan (segments tmp.Path).Length 4 "several segments"

                // The sealed segments (all but the preallocated tail) decide whether a second thread reads.
                Expect.isGreaterThan
                    (segments tmp.Path
                     |> Array.take ((segments tmp.Path).Length - 1)
                     |> Array.sumBy (fun f -> FileInfo(f).Length))
                    (16L <<< 20)
                    "past the size that starts a second thread"

                Expect.isOk (readOnly twoCores tmp.Path) "it reads"
                sameVerdicts tmp.Path

                do
                    use log = RaftLog.Open(tmp.Path, Snapshot.Zero, twoCores)
                    Expect.equal (log.FirstIndex, log.LastIndex) (1UL, last) "the range"

                    for i in [ 1UL; 2UL; 12_345UL; 40_000UL; last ] do
                        Expect.sequenceEqual ((log.GetEntry i).Data.ToArray()) (payload i) $"entry {i}"

                    // Appended after the scan's end, with the chain the check handed over.
                    log.Append(
                        ReadOnlySpan [| Entry(2UL, last + 1UL, ReadOnlyMemory(payload (last + 1UL))) |],
                        HardState(2UL, 1UL, last + 1UL)
                    )

                do
                    use wal = WriteAheadLog.Open(tmp.Path, Snapshot.Zero, twoCores)
                    let all = wal.ReadAll()
                    Expect.equal all.Entries.Count (int last + 1) "every entry and the appended one"
                    Expect.equal all.Entries[int last].Term 2UL "the appended entry"

                    for i in [ 0; 1; 777; 30_000; int last ] do
                        Expect.sequenceEqual
                            (all.Entries[i].Data.ToArray())
                            (payload (uint64 i + 1UL))
                            $"the data of entry {i + 1}"

                    // And ReadAll's writer goes on with the right chain too.
                    wal.Save(HardState(2UL, 1UL, last + 2UL), ReadOnlySpan [| Entry(2UL, last + 2UL, mem "x") |])

                Expect.equal (readOnly oneThread tmp.Path) (readOnly twoCores tmp.Path) "after both appends"
                Expect.isOk (readOnly oneThread tmp.Path) "a one-thread read accepts both appends"
            }

            test "the open scans through the log's own mappings: each segment is mapped once, and stays for the readers" {
                use tmp = new TempDir()
                write tmp.Path |> ignore
                let files = segments tmp.Path

                // How many times this process maps each of the log's segment files.
                let mappings () =
                    let lines = File.ReadAllLines "/proc/self/maps"

                    files
                    |> Array.map (fun f -> lines |> Array.filter (fun l -> l.EndsWith f) |> Array.length)

                Expect.allEqual (mappings ()) 0 "nothing mapped before the open"

                do
                    use log = RaftLog.Open(tmp.Path, Snapshot.Zero, twoCores)
                    // The scan's two threads read through the segments' own mappings and made none of their own.
                    Expect.allEqual (mappings ()) 1 "each segment mapped once after the open"

                    Expect.sequenceEqual
                        ((log.GetEntry 30_000UL).Data.ToArray())
                        (payload 30_000UL)
                        "a read through them"

                    Expect.allEqual (mappings ()) 1 "and still once after a read"

                Expect.allEqual (mappings ()) 0 "all unmapped once the log is closed"
            }

            testList
                "damage gives the one-thread read's error"
                [
                    for name, damage in
                        [
                            "a payload byte in the first segment",
                            (fun (files: string array) -> flip files[0] 1_000_000L)
                            "a payload byte in a middle segment", (fun files -> flip files[2] 2_000_000L)
                            "a payload byte near the end of the last segment",
                            (fun files ->
                                let tail = lastSegment files
                                flip tail (int64 (dataEndOf (File.ReadAllBytes tail)) - 300L))
                            // A later segment's first record is its Crc record: its value follows the length word and the type field.
                            "the chain value a later segment starts with", (fun files -> flip files[3] 12L)
                            "a length word in a middle segment", (fun files -> flip files[1] 0L)
                        ] do
                        test name {
                            use tmp = new TempDir()
                            write tmp.Path |> ignore
                            damage (segments tmp.Path)
                            Expect.isError (readWrite oneThread tmp.Path) "the damage is refused"
                            sameVerdicts tmp.Path
                        }
                ]

            test "a torn tail gives the one-thread read's verdicts" {
                use tmp = new TempDir()
                write tmp.Path |> ignore
                let tail = lastSegment (segments tmp.Path)
                // Zero a 512-byte sector inside the tail's last records: a write a crash cut short.
                let sector = int64 ((dataEndOf (File.ReadAllBytes tail) - 700) / 512 * 512)

                do
                    use f = new FileStream(tail, FileMode.Open, FileAccess.ReadWrite)
                    f.Position <- sector
                    f.Write(Array.zeroCreate<byte> 512, 0, 512)

                Expect.equal
                    (readWrite oneThread tmp.Path |> Result.mapError fst)
                    (Error WalErrorKind.UnexpectedEof)
                    "a torn tail in write mode"

                Expect.isOk (readOnly oneThread tmp.Path) "read-only, the entries before it"
                sameVerdicts tmp.Path
            }
        ]
