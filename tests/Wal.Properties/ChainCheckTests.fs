/// RaftLog.Open of a log large enough (16 MiB or more) that its index scan runs without the CRC
/// while a Reading.ChainCheck checks the chain on another core: on the real disk, with segments
/// of 4 MB so the log has several. A sound log opens as a checked read shows it, and the writer
/// goes on with the right chain (a later checked ReadAll accepts what it appended). A damaged
/// record in any segment, a broken chain between segments and a torn tail give the error a
/// checked read gives (ReadAll, which never skips the CRC).
module Wal.Properties.ChainCheckTests

open System
open System.IO
open Expecto
open Wal
open Wal.Properties.Support

let private options = WalOptions(SegmentSizeBytes = 4_000_000L)

let private payload (index: uint64) =
    Array.init (200 + int (index % 300UL)) (fun j -> byte ((int index * 13 + j) % 251))

/// Writes about 20 MB of entries (term 1, indexes 1..n) through a RaftLog, then closes it.
let private write (dir: string) =
    use log = RaftLog.Create(dir, mem "meta", options)
    let mutable index = 0UL

    while index < 60_000UL do
        let batch =
            Array.init 500 (fun k ->
                Entry(1UL, index + uint64 k + 1UL, ReadOnlyMemory(payload (index + uint64 k + 1UL))))

        index <- index + 500UL
        log.Append(ReadOnlySpan batch, HardState(1UL, 1UL, index))

    index

let private segments (dir: string) =
    Directory.GetFiles(dir, "*.wal") |> Array.sort

/// The error kind a checked read of the directory gives (None when it reads).
let private checkedVerdict (dir: string) =
    errorKind (fun () ->
        use wal = WriteAheadLog.Open(dir, Snapshot.Zero, options)
        wal.ReadAll() |> ignore)

let private openVerdict (dir: string) =
    errorKind (fun () ->
        use log = RaftLog.Open(dir, Snapshot.Zero, options)
        ())

/// Flips one byte of `file` at `offset`.
let private flip (file: string) (offset: int64) =
    use f = new FileStream(file, FileMode.Open, FileAccess.ReadWrite)
    f.Position <- offset
    let b = f.ReadByte()
    f.Position <- offset
    f.WriteByte(byte (b ^^^ 0x40))

let tests =
    testList
        "ChainCheckTests"
        [
            test "a sound large log opens as a checked read shows it, and the writer goes on with the right chain" {
                use tmp = new TempDir()
                let last = write tmp.Path
                Expect.isGreaterThan (segments tmp.Path).Length 4 "several segments"

                Expect.isGreaterThan
                    (segments tmp.Path |> Array.sumBy (fun f -> FileInfo(f).Length))
                    (16L <<< 20)
                    "past the size that starts a chain check"

                do
                    use log = RaftLog.Open(tmp.Path, Snapshot.Zero, options)
                    Expect.equal (log.FirstIndex, log.LastIndex) (1UL, last) "the range"

                    for i in [ 1UL; 2UL; 12_345UL; 40_000UL; last ] do
                        Expect.sequenceEqual ((log.GetEntry i).Data.ToArray()) (payload i) $"entry {i}"

                    // Appended after the scan's end, with the chain the check handed over.
                    log.Append(
                        ReadOnlySpan [| Entry(2UL, last + 1UL, ReadOnlyMemory(payload (last + 1UL))) |],
                        HardState(2UL, 1UL, last + 1UL)
                    )

                use wal = WriteAheadLog.OpenForRead(tmp.Path, Snapshot.Zero, options)
                let all = wal.ReadAll()
                Expect.equal all.Entries.Count (int last + 1) "a checked read sees every entry and the appended one"
                Expect.equal all.Entries[int last].Term 2UL "the appended entry"
            }

            testList
                "damage gives the error a checked read gives"
                [
                    for name, damage in
                        [
                            "a payload byte in the first segment", fun (files: string array) -> flip files[0] 1_000_000L
                            "a payload byte in a middle segment", fun files -> flip files[2] 2_000_000L
                            "a payload byte near the end of the last segment",
                            fun files ->
                                flip
                                    files[files.Length - 1]
                                    (int64 (dataEndOf (File.ReadAllBytes files[files.Length - 1])) - 300L)
                            "the chain value a later segment starts with",
                            // The Crc record's value: the segment's first record, after its 8-byte length word and the type field.
                            fun files -> flip files[3] 12L
                        ] do
                        test name {
                            use tmp = new TempDir()
                            write tmp.Path |> ignore
                            damage (segments tmp.Path)
                            let expected = checkedVerdict tmp.Path
                            Expect.isSome expected "the checked read refuses the damage"
                            Expect.equal (openVerdict tmp.Path) expected "RaftLog.Open refuses it the same way"
                        }
                ]

            test "a torn tail gives the checked read's error" {
                use tmp = new TempDir()
                write tmp.Path |> ignore
                let files = segments tmp.Path
                let tail = files[files.Length - 1]

                // Zero a 512-byte sector inside the tail's last records: a write a crash cut short.
                let bytes = File.ReadAllBytes tail
                let sector = int64 ((dataEndOf bytes - 700) / 512 * 512)

                do
                    use f = new FileStream(tail, FileMode.Open, FileAccess.ReadWrite)
                    f.Position <- sector
                    f.Write(Array.zeroCreate<byte> 512, 0, 512)

                let expected = checkedVerdict tmp.Path
                Expect.equal expected (Some WalErrorKind.UnexpectedEof) "a torn tail"
                Expect.equal (openVerdict tmp.Path) expected "RaftLog.Open says the same"
            }
        ]
