/// The write path under load: the page writer's contract with etcd (what goes to the file, and
/// when), and records larger than its 128 KiB buffer, with and without power cuts.
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

let private chunkSizes =
    Gen.frequency
        [
            6, Gen.choose (1, 5000)
            2, Gen.choose (5001, 140000)
            1, Gen.choose (140001, 400000)
        ]
    |> Gen.listOf
    |> Arb.fromGen

let ``the page writer writes whole pages until a flush, never buffers past its watermark, and loses nothing``
    (start: uint16)
    =
    Prop.forAll chunkSizes (fun sizes ->
        let file = new RecordingFile()
        let offset = int64 start
        let writer = PageWriter(file, offset)
        let random = Random(sizes.Length)
        let expected = ResizeArray<byte>()
        let mutable bounded = true

        for size in sizes do
            let chunk = Array.zeroCreate<byte> size
            random.NextBytes chunk
            expected.AddRange chunk
            writer.Write(ReadOnlySpan chunk)
            bounded <- bounded && writer.Position - writer.FlushedOffset <= 128L * 1024L + 4096L

        let beforeFlush = List.ofSeq file.Writes
        writer.Flush()

        let aligned = beforeFlush |> List.forall (fun (o, n) -> (o + int64 n) % 4096L = 0L)

        let contiguous =
            List.ofSeq file.Writes
            |> List.fold (fun (ok, next) (o, n) -> ok && o = next, o + int64 n) (true, offset)
            |> fst

        let content = file.Bytes[int offset ..]

        (aligned |> Prop.label "every write before the flush ends on a page boundary")
        .&. (bounded |> Prop.label "the buffer stays within watermark + one page")
        .&. (contiguous |> Prop.label "writes follow one another")
        .&. ((content = expected.ToArray())
             |> Prop.label "the file holds exactly what was written")
        .&. ((writer.FlushedOffset = offset + int64 expected.Count)
             |> Prop.label "the flushed offset is the end"))

let ``a write that fits under the watermark only buffers`` () =
    let file = new RecordingFile()
    let writer = PageWriter(file, 100L)
    writer.Write(ReadOnlySpan(Array.zeroCreate<byte>(128 * 1024 - 8)))
    writer.Write(ReadOnlySpan(Array.zeroCreate<byte> 8))
    Expect.equal file.Writes.Count 0 ""
    Expect.equal writer.FlushedOffset 100L ""
    // Past the watermark, etcd's writer still waits until the partial page is complete rather
    // than write an unaligned tail.
    writer.Write(ReadOnlySpan(Array.zeroCreate<byte> 1))
    Expect.equal file.Writes.Count 0 "a byte past the watermark waits for its page"
    let slack = 4096 - int ((100L + 128L * 1024L + 1L) % 4096L)
    writer.Write(ReadOnlySpan(Array.zeroCreate<byte> slack))
    Expect.equal file.Writes.Count 1 "completing the page writes the buffer out"
    Expect.equal (fst file.Writes[0]) 100L ""
    Expect.equal ((fst file.Writes[0] + int64 (snd file.Writes[0])) % 4096L) 0L ""

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
                "the page writer writes whole pages until a flush, never buffers past its watermark, and loses nothing"
                ``the page writer writes whole pages until a flush, never buffers past its watermark, and loses nothing``
            testCase
                "a write that fits under the watermark only buffers"
                ``a write that fits under the watermark only buffers``
            testPropertyWithConfig
                (fsCheck 30 [])
                "records larger than the page writer's buffer survive a power cut at any call"
                ``records larger than the page writer's buffer survive a power cut at any call``
        ]
