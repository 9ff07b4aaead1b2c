/// The write path under load: the page writer's account of etcd's writes (on which a cut is
/// decided), its own writes (one a Save), and records larger than etcd's 128 KiB buffer, with
/// and without power cuts.
module Wal.Properties.WriterProperties

open System
open Expecto
open FsCheck
open FsCheck.FSharp
open Wal
open Wal.Engine
open Wal.Format
open Wal.Model
open Wal.Oracle
open Wal.Simulation
open Wal.Properties.Support

/// A file that records every write it is given.
type private RecordingFile() =
    let mutable bytes: byte[] = Array.zeroCreate 0
    member val Writes = ResizeArray<int64 * int>()
    member _.Bytes = bytes

    interface Wal.Storage.IStorageFile with
        member _.Length = int64 bytes.Length

        member _.Read(offset, buffer) =
            let n = max 0 (min buffer.Length (bytes.Length - int offset))
            ReadOnlySpan(bytes, int offset, n).CopyTo(buffer)
            n

        member this.Write(offset, data) =
            this.Writes.Add(offset, data.Length)
            let ending = int offset + data.Length

            if ending > bytes.Length then
                Array.Resize(&bytes, ending)

            data.CopyTo(Span(bytes, int offset, data.Length))

        member _.DataSync() = ()
        member _.Sync() = ()
        member _.Truncate(length) = Array.Resize(&bytes, int length)
        member _.Preallocate(_) = ()
        member _.TryLock() = true
        member _.Dispose() = ()

/// etcd's pkg/ioutil PageWriter as etcd writes it, with its buffer: the reference the page
/// writer's account is held to. `Flushed` is the file position its writes leave.
type private EtcdPageWriter(offset: int64) =
    let watermark = 128 * 1024
    let page = 4096
    let buffer = ResizeArray<byte>()
    let mutable flushed = offset

    member _.Flushed = flushed

    member this.Write(data: byte[]) =
        if data.Length + buffer.Count <= watermark then
            buffer.AddRange data
        else
            let slack = page - int ((flushed + int64 buffer.Count) % int64 page)

            if slack <> page && slack > data.Length then
                buffer.AddRange data
            else
                let taken = if slack = page then 0 else slack
                buffer.AddRange data[.. taken - 1]
                flushed <- flushed + int64 buffer.Count
                buffer.Clear()
                let rest = data[taken..]

                let direct = if rest.Length > page then rest.Length / page * page else 0

                flushed <- flushed + int64 direct
                this.Write rest[direct..]

/// What the encoder gives the page writer: plain writes, and frames built in place.
type private Given =
    | Bytes of int
    | Frame of int

let private givenSequences =
    // Past the buffer's 1 MiB limit now and then: written straight through, as no frame fits.
    let size =
        Gen.frequency
            [
                24, Gen.choose (1, 5000)
                8, Gen.choose (5001, 140000)
                4, Gen.choose (140001, 400000)
                1, Gen.choose (1_000_000, 2_500_000)
            ]

    Gen.frequency
        [
            1, size |> Gen.map Bytes
            2, size |> Gen.map (fun n -> Frame(max 8 (n / 8 * 8)))
        ]
    |> Gen.listOf
    |> Arb.fromGen

let ``the page writer keeps etcd's account, writes only when its buffer is full, and loses nothing`` (start: uint16) =
    Prop.forAll givenSequences (fun given ->
        let file = new RecordingFile()
        let offset = int64 start
        let writer = PageWriter(file, offset)
        let etcd = EtcdPageWriter offset
        let random = Random(given.Length)
        let expected = ResizeArray<byte>()
        let mutable accounted = true
        let mutable bounded = true

        for g in given do
            match g with
            | Bytes n ->
                let chunk = Array.zeroCreate<byte> n
                random.NextBytes chunk
                expected.AddRange chunk
                writer.Write(ReadOnlySpan chunk)
                etcd.Write chunk
            | Frame n ->
                let frame = Array.zeroCreate<byte> n
                random.NextBytes frame
                expected.AddRange frame
                let mutable space = Span<byte>.Empty
                let reserved = writer.TryReserveFrame(n, &space)

                if reserved then
                    ReadOnlySpan(frame).CopyTo space
                else
                    writer.Write(ReadOnlySpan frame[..7])
                    writer.Write(ReadOnlySpan frame[8..])

                etcd.Write frame[..7]
                etcd.Write frame[8..]

            accounted <- accounted && writer.FlushedOffset = etcd.Flushed

            bounded <-
                bounded
                && writer.Position - writer.WrittenOffset <= int64 PageWriter.MaxBufferBytes

        let beforeFlush = file.Writes.Count
        writer.Flush()

        let contiguous =
            List.ofSeq file.Writes
            |> List.fold (fun (ok, next) (o, n) -> ok && o = next, o + int64 n) (true, offset)
            |> fst

        let content = file.Bytes[int offset ..]
        let total = int64 expected.Count

        (accounted
         |> Prop.label "the flushed offset is where etcd's writes would have left the file")
        .&. (bounded |> Prop.label "the buffer stays within its limit")
        .&. ((total > int64 PageWriter.MaxBufferBytes || beforeFlush = 0)
             |> Prop.label "nothing is written before the flush while the buffer holds it all")
        .&. (contiguous |> Prop.label "writes follow one another")
        .&. ((content = expected.ToArray())
             |> Prop.label "the file holds exactly what was given")
        .&. ((writer.FlushedOffset = offset + total && writer.WrittenOffset = offset + total)
             |> Prop.label "after the flush, both offsets are the end"))

let ``etcd's account: past the watermark, a page is written once it is complete, and nothing reaches the file before the flush``
    ()
    =
    let file = new RecordingFile()
    let writer = PageWriter(file, 100L)
    writer.Write(ReadOnlySpan(Array.zeroCreate<byte>(128 * 1024 - 8)))
    writer.Write(ReadOnlySpan(Array.zeroCreate<byte> 8))
    Expect.equal writer.FlushedOffset 100L "under the watermark, etcd only buffers"
    // Past the watermark, etcd's writer still waits until the partial page is complete rather
    // than write an unaligned tail.
    writer.Write(ReadOnlySpan(Array.zeroCreate<byte> 1))
    Expect.equal writer.FlushedOffset 100L "a byte past the watermark waits for its page"
    let slack = 4096 - int ((100L + 128L * 1024L + 1L) % 4096L)
    writer.Write(ReadOnlySpan(Array.zeroCreate<byte> slack))
    let pageEnd = 100L + 128L * 1024L + 1L + int64 slack
    Expect.equal pageEnd (pageEnd / 4096L * 4096L) "the test's arithmetic: the page is complete"
    Expect.equal writer.FlushedOffset pageEnd "completing the page, etcd writes its buffer out"
    // etcd's buffer is empty again, and three pages and a tail fit under its watermark.
    writer.Write(ReadOnlySpan(Array.zeroCreate<byte>(3 * 4096 + 10)))
    Expect.equal writer.FlushedOffset pageEnd "three pages and a tail fit under the watermark again"
    Expect.equal file.Writes.Count 0 "the page writer itself has written nothing yet"
    writer.Flush()
    Expect.equal (List.ofSeq file.Writes) [ 100L, 128 * 1024 + 1 + slack + 3 * 4096 + 10 ] "one write at the flush"
    Expect.equal writer.FlushedOffset (100L + int64 (128 * 1024 + 1 + slack + 3 * 4096 + 10)) ""

/// Through the engine on the real disk: the writes each Save makes to the tail's file, Save by
/// Save, for Saves of 100 entries of `entryBytes`, with zero-ahead off so that only records are written.
let private writesPerSave (entryBytes: int) (saves: int) =
    use tmp = new TempDir()
    let writes = Collections.Concurrent.ConcurrentQueue<int64 * int>()

    let fs =
        realDiskWith (fun path mode ->
            let f = Wal.Storage.LinuxFileSystem.Instance.OpenFile(path, mode)

            { new PassThroughFile(f) with
                override _.Write(offset, data) =
                    writes.Enqueue(offset, data.Length)
                    f.Write(offset, data)
            }
            :> Wal.Storage.IStorageFile)

    let options =
        WalOptions(FileSystem = fs, SegmentSizeBytes = 64L * 1024L * 1024L, ZeroAheadBytes = 0)

    use wal = WriteAheadLog.Create(tmp.Path, ReadOnlyMemory [| 1uy |], options)
    let payload = ReadOnlyMemory(Array.init entryBytes byte)

    [
        for s in 0 .. saves - 1 do
            writes.Clear()

            let batch = Array.init 100 (fun i -> Entry(1UL, uint64 (s * 100 + i + 1), payload))

            wal.Save(HardState(1UL, 1UL, uint64 (s * 100 + 100)), ReadOnlySpan batch)
            List.ofSeq writes
    ]

let ``a Save that syncs goes to the file in one write, however large, up to the buffer's limit`` () =
    // 100 x 4 KiB: about 413 KB a Save, where etcd's writer makes a write every 128 KiB.
    for writes in writesPerSave 4096 5 do
        Expect.equal writes.Length 1 $"one write a Save of 4 KiB entries: {writes}"
        Expect.isGreaterThan (snd writes.Head) (400 * 1024) "the whole Save"

    // 100 x 30 KiB: about 3 MB a Save, written in pieces of at most the buffer's limit.
    for writes in writesPerSave (30 * 1024) 2 do
        Expect.equal writes.Length 3 $"a 3 MB Save in writes of up to 1 MiB: {writes}"

        Expect.all writes (fun (_, n) -> n <= PageWriter.MaxBufferBytes) "no write is larger than the buffer"

let private largeEntries =
    gen {
        let! sizes =
            Gen.listOfLength 6 (Gen.frequency [ 2, Gen.choose (0, 3000); 1, Gen.choose (100000, 300000) ])

        let! perSave = Gen.choose (1, 3)

        let entries =
            sizes
            |> List.mapi (fun i n ->
                {
                    Term = 1UL
                    Index = uint64 (i + 1)
                    Kind = 0
                    Data = Array.init n (fun j -> byte (j * 7 + i))
                })

        return entries |> List.chunkBySize perSave
    }
    |> Arb.fromGen

let ``records larger than the page writer's buffer survive a power cut at any call`` (point: PositiveInt) (image: int) =
    Prop.forAll largeEntries (fun batches ->
        let operations =
            [
                yield Do(Create "node-1"B)
                for batch in batches do
                    yield
                        Do(
                            Save(
                                {
                                    Term = 1UL
                                    Vote = 1UL
                                    Commit = (List.last batch).Index
                                },
                                batch
                            )
                        )
            ]

        let config =
            { Harness.defaultConfig with
                SegmentSize = 256L * 1024L
            }

        let clean = Harness.run config operations
        let crashAfter = 1 + (point.Get - 1) % clean.Mutations

        let crashed =
            Harness.run
                { config with
                    CrashAfter = Some crashAfter
                    CrashImage = image
                }
                operations

        (clean.Divergence.IsNone |> Prop.label (defaultArg clean.Divergence ""))
        .&. (crashed.Divergence.IsNone |> Prop.label (defaultArg crashed.Divergence ""))
        |> Prop.label $"power cut after mutating call {crashAfter}")

/// This file's tests.
let tests =
    testList
        "WriterProperties"
        [
            testPropertyWithConfig
                (fsCheck 200 [])
                "the page writer keeps etcd's account, writes only when its buffer is full, and loses nothing"
                ``the page writer keeps etcd's account, writes only when its buffer is full, and loses nothing``
            testCase
                "etcd's account: past the watermark, a page is written once it is complete, and nothing reaches the file before the flush"
                ``etcd's account: past the watermark, a page is written once it is complete, and nothing reaches the file before the flush``
            testCase
                "a Save that syncs goes to the file in one write, however large, up to the buffer's limit"
                ``a Save that syncs goes to the file in one write, however large, up to the buffer's limit``
            testPropertyWithConfig
                (fsCheck 30 [])
                "records larger than the page writer's buffer survive a power cut at any call"
                ``records larger than the page writer's buffer survive a power cut at any call``
        ]
