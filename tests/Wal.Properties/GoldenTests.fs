/// Known answers: the CRC-32C check value, frame words, and files written by etcd's own Go code.
module Wal.Properties.GoldenTests

open System
open System.IO
open System.Text
open Expecto
open Wal
open Wal.Format
open Wal.Properties.Support

let private hex (s: string) = Convert.FromHexString s

let private corpus =
    Path.Combine(testDirectory, "corpus", "etcd-3.4", "saves", "wal")

let private etcdFiles () =
    Directory.GetFiles(corpus, "*.wal") |> Array.map Path.GetFileName |> Array.sort

let ``CRC-32C of "123456789" is the Castagnoli check value`` () =
    Expect.equal (Crc32C.Update(0u, Encoding.ASCII.GetBytes "123456789")) (0xE3069283u) ""

let ``CRC-32C chains: updating in two pieces equals one update`` () =
    let whole = Crc32C.Update(0u, Encoding.ASCII.GetBytes "123456789")
    let first = Crc32C.Update(0u, Encoding.ASCII.GetBytes "1234")
    Expect.equal (Crc32C.Update(first, Encoding.ASCII.GetBytes "56789")) whole ""

let ``CRC-32C of nothing leaves the chain unchanged`` () =
    Expect.equal (Crc32C.Update(0x12345678u, ReadOnlySpan<byte>.Empty)) (0x12345678u) ""

/// CRC-32C one bit at a time (reflected polynomial 0x82F63B78, Go's conventions): an oracle
/// that shares nothing with the engine's striped loop.
let private bitwiseCrc (crc: uint32) (data: ReadOnlySpan<byte>) =
    let mutable c = ~~~crc

    for b in data do
        c <- c ^^^ uint32 b

        for _ in 1..8 do
            c <-
                if c &&& 1u <> 0u then
                    (c >>> 1) ^^^ 0x82F63B78u
                else
                    c >>> 1

    ~~~c

let ``CRC-32C agrees with a bit-at-a-time CRC at every length, start and split`` () =
    // Every length to past three long stripes (3 x 768 B), so each path and each remainder runs,
    // from a chained start, and split at a point that moves with the length.
    let random = Random 7
    let data = Array.zeroCreate<byte> 2400
    random.NextBytes data

    for length in 0 .. data.Length do
        let start = uint32 (random.Next()) ||| (uint32 length <<< 20)
        let input = ReadOnlySpan(data, 0, length)
        let expected = bitwiseCrc start input
        Expect.equal (Crc32C.Update(start, input)) expected $"{length} bytes"
        let split = length * 7 / 11
        let first = Crc32C.Update(start, input.Slice(0, split))
        Expect.equal (Crc32C.Update(first, input.Slice split)) expected $"{length} bytes split at {split}"

    // Unaligned starts: the stripes read unaligned words.
    for offset in 1..7 do
        let input = ReadOnlySpan(data, offset, 2000)
        Expect.equal (Crc32C.Update(0u, input)) (bitwiseCrc 0u input) $"2000 bytes from offset {offset}"

let ``CRC-32C folds long inputs by carry-less multiplication, copies while it folds, and agrees with a bit-at-a-time CRC``
    ()
    =
    // Lengths around the fold's threshold and its four-chain step (256 bytes), to 64 KiB, from
    // chained starts: the folded blocks, the lanes' reduction and the CRC instruction's tail.
    let random = Random 11
    let data = Array.zeroCreate<byte>(65536 + 77)
    random.NextBytes data

    let lengths =
        [
            255
            256
            257
            319
            320
            448
            511
            512
            575
            1023
            1024
            4096
            4133
            65536
            65536 + 77
        ]
        @ List.init 40 (fun _ -> random.Next(256, data.Length))

    for length in lengths do
        let start = uint32 (random.Next())
        let input = ReadOnlySpan(data, 0, length)
        Expect.equal (Crc32C.Update(start, input)) (bitwiseCrc start input) $"{length} bytes"

    // Checksumming while copying: the same CRC, and the destination holds the source and nothing more.
    for length in lengths do
        let start = uint32 (random.Next())
        let input = ReadOnlySpan(data, 0, length)
        let destination = Array.create (length + 16) 0xEEuy

        Expect.equal
            (Crc32C.UpdateAndCopy(start, input, Span(destination, 8, length + 8)))
            (bitwiseCrc start input)
            $"{length} bytes copied"

        Expect.isTrue (ReadOnlySpan(destination, 8, length).SequenceEqual input) $"{length} bytes copied exactly"

        Expect.isTrue
            (Array.forall ((=) 0xEEuy) destination[..7]
             && Array.forall ((=) 0xEEuy) destination[length + 8 ..])
            $"nothing written around {length} bytes"

    // The fold alone, where this machine has it: the raw register over whole blocks.
    if Crc32CFold.IsSupported then
        for blocks in [ 1; 2; 3; 4; 5; 7; 8; 9; 63; 64; 1024 ] do
            let register = uint32 (random.Next())
            let input = ReadOnlySpan(data, 3, blocks * 64)
            let expected = ~~~(bitwiseCrc ~~~register input)
            Expect.equal (Crc32CFold.Update(register, &data[3], blocks)) expected $"{blocks} blocks"

let ``length words carry 0x80 | padding in the top byte`` (length: int, word: uint64, pad: int) =
    Expect.equal (Frame.Encode length) word ""
    Expect.equal (Frame.PaddingFor length) pad ""
    Expect.equal (Frame.Decode word) (struct (uint64 length, pad)) ""
    Expect.equal ((Frame.SizeOf length) % 8) 0 ""

let ``a Crc record of 0 encodes as 08 04 10 00`` () =
    let buffer = Array.zeroCreate<byte> 16

    let n =
        RecordCodec.WriteRecord(Span buffer, RecordType.Crc, 0u, ReadOnlySpan.Empty, ReadOnlySpan.Empty)

    Expect.equal buffer[.. n - 1] (hex "08041000") ""

let ``a fresh WAL starts with the bytes etcd writes`` () =
    // Crc(0), Metadata "node-1", empty Snapshot: the first 64 bytes etcd 3.4 wrote in the corpus.
    let etcd = File.ReadAllBytes(Path.Combine(corpus, firstSegment))[..63]
    Expect.equal etcd[..15] (hex "04000000000000840804100000000000") ""
    let fs, options = memoryOptions 4096L
    (WriteAheadLog.Create("/w", mem "node-1", options)).Dispose()
    let ours = fs.ReadAllBytes("/w/" + firstSegment)
    Expect.equal ours[..63] etcd ""
    Expect.isTrue (ours[64..] |> Array.forall ((=) 0uy)) "the rest of the preallocated segment is zeros"
    Expect.equal ours.Length 4096 "preallocated to the segment size"

/// The operations of interop/etcd/corpus/saves.json, which the etcd peer ran against etcd's wal package.
/// Reading etcd's corpus as etcd does: its hard states commit past the last entry.
let private etcdRules = lenient WalOptions.Default

/// etcd's peer commits one past the last entry after every tenth Save, which raft never does, so
/// writing the same bytes needs etcd's lenient rules.
let private writeCorpusOperations (options: WalOptions) dir =
    let options = lenient options
    use wal = WriteAheadLog.Create(dir, mem "node-1", options)

    for i in 1UL .. 200UL do
        wal.Save(HardState(1UL, 1UL, i), [| Entry(1UL, i, mem $"put key{i} = value{i}") |])

        if i % 10UL = 0UL then
            wal.Save(HardState(1UL, 1UL, i + 1UL), Array.empty<Entry>)

        if i = 100UL then
            wal.SaveSnapshot(Snapshot(90UL, 1UL))

    wal.Dispose()
    use reopened = WriteAheadLog.Open(dir, Snapshot(90UL, 1UL), options)
    reopened.ReadAll() |> ignore

let ``the same operations write byte-identical segments to etcd's, cuts included`` () =
    let fs, options = memoryOptions 4096L
    writeCorpusOperations options "/w"
    let ours = fs.List "/w" |> List.filter (fun n -> n.EndsWith ".wal") |> Array.ofList
    Expect.equal ours (etcdFiles ()) ""

    for name in ours do
        Expect.equal (fs.ReadAllBytes("/w/" + name)) (File.ReadAllBytes(Path.Combine(corpus, name))) name

let ``the engine reads etcd's files at the snapshot`` () =
    use dir = new TempDir()
    Directory.CreateDirectory dir.Path |> ignore

    for name in etcdFiles () do
        File.Copy(Path.Combine(corpus, name), Path.Combine(dir.Path, name))

    use wal = WriteAheadLog.OpenForRead(dir.Path, Snapshot(90UL, 1UL), etcdRules)
    let result = wal.ReadAll()
    Expect.equal (Encoding.UTF8.GetString(result.Metadata.Span)) "node-1" ""
    Expect.equal result.State (HardState(1UL, 1UL, 201UL)) ""
    Expect.equal (result.Entries |> Seq.map _.Index |> List.ofSeq) [ 91UL .. 200UL ] ""
    Expect.equal (Encoding.UTF8.GetString(result.Entries[0].Data.Span)) "put key91 = value91" ""

let ``etcd's files opened at index 0 give every entry, and at an unknown snapshot SnapshotNotFound with contents`` () =
    use dir = new TempDir()
    Directory.CreateDirectory dir.Path |> ignore

    for name in etcdFiles () do
        File.Copy(Path.Combine(corpus, name), Path.Combine(dir.Path, name))

    do
        use wal = WriteAheadLog.OpenForRead(dir.Path, Snapshot.Zero, etcdRules)
        Expect.equal (wal.ReadAll().Entries.Count) 200 ""

    use wal = WriteAheadLog.OpenForRead(dir.Path, Snapshot(95UL, 1UL), etcdRules)
    let ex = expectWalError (fun () -> wal.ReadAll() |> ignore)
    Expect.equal ex.Kind WalErrorKind.SnapshotNotFound ""
    Expect.equal (ex.Contents.Value.Entries |> Seq.map _.Index |> List.ofSeq) [ 96UL .. 200UL ] ""

let ``the real file system writes the same bytes as the simulated one`` () =
    use dir = new TempDir()
    let options = WalOptions(SegmentSizeBytes = 4096L)
    writeCorpusOperations options dir.Path
    let names = Directory.GetFiles(dir.Path) |> Array.map Path.GetFileName |> Array.sort
    // The pipeline's prepared "*.tmp" file is removed on close.
    Expect.equal names (etcdFiles ()) ""

    for name in names do
        Expect.equal
            (File.ReadAllBytes(Path.Combine(dir.Path, name)))
            (File.ReadAllBytes(Path.Combine(corpus, name)))
            name

/// This file's tests.
let tests =
    testList
        "GoldenTests"
        [
            testCase
                "CRC-32C of \"123456789\" is the Castagnoli check value"
                ``CRC-32C of "123456789" is the Castagnoli check value``
            testCase
                "CRC-32C chains: updating in two pieces equals one update"
                ``CRC-32C chains: updating in two pieces equals one update``
            testCase "CRC-32C of nothing leaves the chain unchanged" ``CRC-32C of nothing leaves the chain unchanged``
            testCase
                "CRC-32C folds long inputs by carry-less multiplication, copies while it folds, and agrees with a bit-at-a-time CRC"
                ``CRC-32C folds long inputs by carry-less multiplication, copies while it folds, and agrees with a bit-at-a-time CRC``
            testCase "length words carry 0x80 | padding in the top byte(0, 0x0000000000000000UL, 0)" (fun () ->
                ``length words carry 0x80 | padding in the top byte`` (0, 0x0000000000000000UL, 0))
            testCase "length words carry 0x80 | padding in the top byte(4, 0x8400000000000004UL, 4)" (fun () ->
                ``length words carry 0x80 | padding in the top byte`` (4, 0x8400000000000004UL, 4))
            testCase "length words carry 0x80 | padding in the top byte(8, 0x0000000000000008UL, 0)" (fun () ->
                ``length words carry 0x80 | padding in the top byte`` (8, 0x0000000000000008UL, 0))
            testCase "length words carry 0x80 | padding in the top byte(13, 0x830000000000000DUL, 3)" (fun () ->
                ``length words carry 0x80 | padding in the top byte`` (13, 0x830000000000000DUL, 3))
            testCase "length words carry 0x80 | padding in the top byte(15, 0x810000000000000FUL, 1)" (fun () ->
                ``length words carry 0x80 | padding in the top byte`` (15, 0x810000000000000FUL, 1))
            testCase "length words carry 0x80 | padding in the top byte(1000001, 0x87000000000F4241UL, 7)" (fun () ->
                ``length words carry 0x80 | padding in the top byte`` (1000001, 0x87000000000F4241UL, 7))
            testCase
                "a length word without the marker bit has no padding, whatever its top byte's low bits say"
                (fun () ->
                    // etcd's decodeFrameSize reads padding only when the word is negative (the 0x80 bit).
                    Expect.equal (Frame.Decode 0x050000000000000CUL) (struct (12UL, 0)) ""
                    Expect.equal (Frame.Decode 0x850000000000000BUL) (struct (11UL, 5)) "")
            testCase
                "CRC-32C agrees with a bit-at-a-time CRC at every length, start and split"
                ``CRC-32C agrees with a bit-at-a-time CRC at every length, start and split``
            testCase "a Crc record of 0 encodes as 08 04 10 00" ``a Crc record of 0 encodes as 08 04 10 00``
            testCase "a fresh WAL starts with the bytes etcd writes" ``a fresh WAL starts with the bytes etcd writes``
            testCase
                "the same operations write byte-identical segments to etcd's, cuts included"
                ``the same operations write byte-identical segments to etcd's, cuts included``
            testCase "the engine reads etcd's files at the snapshot" ``the engine reads etcd's files at the snapshot``
            testCase
                "etcd's files opened at index 0 give every entry, and at an unknown snapshot SnapshotNotFound with contents"
                ``etcd's files opened at index 0 give every entry, and at an unknown snapshot SnapshotNotFound with contents``
            testCase
                "the real file system writes the same bytes as the simulated one"
                ``the real file system writes the same bytes as the simulated one``
        ]
