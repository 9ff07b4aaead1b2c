/// Known answers: the CRC-32C check value, frame words, and files written by etcd's own Go code.
module Wal.Properties.GoldenTests

open System
open System.IO
open System.Text
open NUnit.Framework
open Wal
open Wal.Format
open Wal.Properties.Support

let private hex (s: string) = Convert.FromHexString s

let private corpus =
    Path.Combine(TestContext.CurrentContext.TestDirectory, "corpus", "etcd-3.4", "saves", "wal")

let private etcdFiles () =
    Directory.GetFiles(corpus, "*.wal") |> Array.map Path.GetFileName |> Array.sort

[<Test>]
let ``CRC-32C of "123456789" is the Castagnoli check value`` () =
    Assert.That(Crc32C.Update(0u, Encoding.ASCII.GetBytes "123456789"), Is.EqualTo 0xE3069283u)

[<Test>]
let ``CRC-32C chains: updating in two pieces equals one update`` () =
    let whole = Crc32C.Update(0u, Encoding.ASCII.GetBytes "123456789")
    let first = Crc32C.Update(0u, Encoding.ASCII.GetBytes "1234")
    Assert.That(Crc32C.Update(first, Encoding.ASCII.GetBytes "56789"), Is.EqualTo whole)

[<Test>]
let ``CRC-32C of nothing leaves the chain unchanged`` () =
    Assert.That(Crc32C.Update(0x12345678u, ReadOnlySpan<byte>.Empty), Is.EqualTo 0x12345678u)

[<TestCase(0, 0x0000000000000000UL, 0)>]
[<TestCase(4, 0x8400000000000004UL, 4)>]
[<TestCase(8, 0x0000000000000008UL, 0)>]
[<TestCase(13, 0x830000000000000DUL, 3)>]
[<TestCase(15, 0x810000000000000FUL, 1)>]
[<TestCase(1000001, 0x87000000000F4241UL, 7)>]
let ``length words carry 0x80 | padding in the top byte`` (length: int, word: uint64, pad: int) =
    Assert.That(Frame.Encode length, Is.EqualTo word)
    Assert.That(Frame.PaddingFor length, Is.EqualTo pad)
    Assert.That(Frame.Decode word, Is.EqualTo(struct (uint64 length, pad)))
    Assert.That((Frame.SizeOf length) % 8, Is.EqualTo 0)

[<Test>]
let ``a Crc record of 0 encodes as 08 04 10 00`` () =
    let buffer = Array.zeroCreate<byte> 16

    let n =
        RecordCodec.WriteRecord(Span buffer, RecordType.Crc, 0u, ReadOnlySpan.Empty, ReadOnlySpan.Empty)

    expectEqual (hex "08041000") buffer[.. n - 1]

[<Test>]
let ``a fresh WAL starts with the bytes etcd writes`` () =
    // Crc(0), Metadata "node-1", empty Snapshot: the first 64 bytes etcd 3.4 wrote in the corpus.
    let etcd = File.ReadAllBytes(Path.Combine(corpus, firstSegment))[..63]
    expectEqual (hex "04000000000000840804100000000000") etcd[..15]
    let fs, options = memoryOptions 4096L
    (WriteAheadLog.Create("/w", mem "node-1", options)).Dispose()
    let ours = fs.ReadAllBytes("/w/" + firstSegment)
    expectEqual etcd ours[..63]
    Assert.That(ours[64..] |> Array.forall ((=) 0uy), "the rest of the preallocated segment is zeros")
    Assert.That(ours.Length, Is.EqualTo 4096, "preallocated to the segment size")

/// The operations of interop/etcd/corpus/saves.json, which the etcd peer ran against etcd's wal package.
let private writeCorpusOperations (options: WalOptions) dir =
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

[<Test>]
let ``the same operations write byte-identical segments to etcd's, cuts included`` () =
    let fs, options = memoryOptions 4096L
    writeCorpusOperations options "/w"
    let ours = fs.List "/w" |> List.filter (fun n -> n.EndsWith ".wal") |> Array.ofList
    expectEqual (etcdFiles ()) ours

    for name in ours do
        expectEqualAt name (File.ReadAllBytes(Path.Combine(corpus, name))) (fs.ReadAllBytes("/w/" + name))

[<Test>]
let ``the engine reads etcd's files at the snapshot`` () =
    use dir = new TempDir()
    Directory.CreateDirectory dir.Path |> ignore

    for name in etcdFiles () do
        File.Copy(Path.Combine(corpus, name), Path.Combine(dir.Path, name))

    use wal = WriteAheadLog.OpenForRead(dir.Path, Snapshot(90UL, 1UL))
    let result = wal.ReadAll()
    Assert.That(Encoding.UTF8.GetString(result.Metadata.Span), Is.EqualTo "node-1")
    Assert.That(result.State, Is.EqualTo(HardState(1UL, 1UL, 201UL)))
    expectEqual [ 91UL .. 200UL ] (result.Entries |> Seq.map _.Index |> List.ofSeq)
    Assert.That(Encoding.UTF8.GetString(result.Entries[0].Data.Span), Is.EqualTo "put key91 = value91")

[<Test>]
let ``etcd's files opened at index 0 give every entry, and at an unknown snapshot SnapshotNotFound with contents`` () =
    use dir = new TempDir()
    Directory.CreateDirectory dir.Path |> ignore

    for name in etcdFiles () do
        File.Copy(Path.Combine(corpus, name), Path.Combine(dir.Path, name))

    do
        use wal = WriteAheadLog.OpenForRead(dir.Path, Snapshot.Zero)
        Assert.That(wal.ReadAll().Entries.Count, Is.EqualTo 200)

    use wal = WriteAheadLog.OpenForRead(dir.Path, Snapshot(95UL, 1UL))
    let ex = expectWalError (fun () -> wal.ReadAll() |> ignore)
    Assert.That(ex.Kind, Is.EqualTo WalErrorKind.SnapshotNotFound)
    expectEqual [ 96UL .. 200UL ] (ex.Contents.Value.Entries |> Seq.map _.Index |> List.ofSeq)

[<Test>]
let ``the real file system writes the same bytes as the simulated one`` () =
    use dir = new TempDir()
    let options = WalOptions(SegmentSizeBytes = 4096L)
    writeCorpusOperations options dir.Path
    let names = Directory.GetFiles(dir.Path) |> Array.map Path.GetFileName |> Array.sort
    // The pipeline's prepared "*.tmp" file is removed on close.
    expectEqual (etcdFiles ()) names

    for name in names do
        expectEqualAt
            name
            (File.ReadAllBytes(Path.Combine(corpus, name)))
            (File.ReadAllBytes(Path.Combine(dir.Path, name)))
