/// The columns ReadAll keeps its entries in (Reading.EntryStore) against a list of entries: any
/// run of appends and overwrites, with payloads empty, small, chunk-filling and large, reads
/// back as the list does, with its chunks allocated as it goes or taken from a ChunkFeed that
/// faults them in on another thread (a large ReadAll).
module Wal.Properties.EntryStoreProperties

open Expecto
open FsCheck
open FsCheck.FSharp
open System
open Wal
open Wal.Reading
open Wal.Properties.Support

/// One placement: where (a fraction of the entries so far, so overwrites land anywhere), the
/// term, the type and the payload's size.
type Placement =
    {
        Where: float
        Term: uint64
        Type: EntryType
        Size: int
    }

let private placement =
    gen {
        let! append = Gen.frequency [ 5, Gen.constant true; 1, Gen.constant false ]
        let! where = Gen.choose (0, 1000) |> Gen.map (fun k -> float k / 1000.0)
        let! term = Gen.choose (1, 4) |> Gen.map uint64

        let! kind =
            Gen.elements [ EntryType.Normal; EntryType.ConfChange; EntryType.ConfChangeV2 ]

        let! size =
            Gen.frequency
                [
                    2, Gen.constant 0
                    8, Gen.choose (1, 300)
                    2, Gen.choose (3000, 9000)
                    1, Gen.choose (60_000, 70_000)
                ]

        return
            {
                Where = (if append then 2.0 else where)
                Term = term
                Type = kind
                Size = size
            }
    }

type Placements =
    static member Placements() =
        Arb.fromGen (Gen.choose (0, 400) |> Gen.bind (fun n -> Gen.listOfLength n placement))

let private readsBack (feed: ChunkFeed option) (snapshot: byte) (placements: Placement list) =
    let first = uint64 snapshot + 1UL
    let store = EntryStore(uint64 snapshot, Option.toObj feed)
    let model = Collections.Generic.List<Entry>()

    placements
    |> List.iteri (fun k p ->
        let position = min model.Count (int (p.Where * float model.Count))
        let data = Array.init p.Size (fun j -> byte (j * 31 + k))
        model.RemoveRange(position, model.Count - position)
        model.Add(Entry(p.Term, first + uint64 position, p.Type, ReadOnlyMemory data))
        store.Place(position, p.Term, p.Type, ReadOnlySpan data))

    Expect.equal store.Count model.Count "count"
    Expect.sequenceEqual (List.ofSeq store) (List.ofSeq model) "entries, in order"

    for i in 0 .. model.Count - 1 do
        Expect.equal store[i] model[i] $"entry at {i}"

    // The store keeps reading back the same after its feed has stopped.
    store.EndFeed()
    Expect.sequenceEqual (List.ofSeq store) (List.ofSeq model) "entries, after the feed ended"

let ``EntryStore reads back what a list of entries holds after the same placements``
    (snapshot: byte)
    (placements: Placement list)
    =
    readsBack None snapshot placements

let ``EntryStore with a chunk feed reads back what a list of entries holds``
    (snapshot: byte)
    (placements: Placement list)
    =
    // A budget of 3 chunks, fewer than many runs use: past it the store allocates its own.
    let feed =
        ChunkFeed.For(EntryStore.ChunkBytes, 0L, 3L * int64 EntryStore.ChunkBytes, minChunks = 0)

    Expect.isTrue (isNull feed = (Environment.ProcessorCount < 2)) "a feed on more than one core"
    readsBack (Option.ofObj feed) snapshot placements

/// Waits (up to 5 s) for the feed to have a chunk ready.
let private take (feed: ChunkFeed) =
    let clock = Diagnostics.Stopwatch.StartNew()
    let mutable chunk = feed.TryTake()

    while isNull chunk && clock.Elapsed.TotalSeconds < 5.0 do
        Threading.Thread.Sleep 1
        chunk <- feed.TryTake()

    chunk

let feedTests =
    testList
        "ChunkFeed"
        [
            test "makes no more chunks than the bytes it was given, each its own, and stops" {
                if Environment.ProcessorCount >= 2 then
                    use feed = ChunkFeed.For(4096, 0L, 3L * 4096L, minChunks = 0)
                    let chunks = [ for _ in 1..3 -> take feed ]
                    Expect.all chunks (fun c -> not (isNull c) && c.Length = 4096) "three chunks of 4 KiB"

                    Expect.equal
                        (chunks |> List.distinctBy LanguagePrimitives.PhysicalHash |> List.length)
                        3
                        "distinct arrays"

                    Threading.Thread.Sleep 50
                    Expect.isNull (feed.TryTake()) "a fourth chunk past the budget"
            }
            test "stops at once while its worker waits for room" {
                if Environment.ProcessorCount >= 2 then
                    let feed = ChunkFeed.For(4096, 0L, 100L * 4096L, minChunks = 0)
                    // Let the worker fill the queue and block on it.
                    Expect.isNotNull (take feed) "a chunk"
                    Threading.Thread.Sleep 50
                    let clock = Diagnostics.Stopwatch.StartNew()
                    feed.Dispose()
                    Expect.isLessThan clock.Elapsed.TotalSeconds 5.0 "Dispose returns"
                    feed.Dispose()
            }
            test "is not started for a scan of a few chunks, nor for a small log in a preallocated tail" {
                let mib = int64 EntryStore.ChunkBytes
                Expect.isNull (ChunkFeed.For(EntryStore.ChunkBytes, 8L * mib, 8L * mib)) "a scan of 8 chunks"
                // One segment: 64 MB of file, preallocated, however little it holds.
                Expect.isNull (ChunkFeed.For(EntryStore.ChunkBytes, 0L, 64L * mib)) "a lone tail"

                if Environment.ProcessorCount >= 2 then
                    use feed = ChunkFeed.For(EntryStore.ChunkBytes, 16L * mib, 80L * mib)
                    Expect.isNotNull feed "16 MiB sealed"
            }
        ]

/// This file's tests.
let tests =
    testList
        "EntryStoreProperties"
        [
            testPropertyWithConfig
                (fsCheck 200 [ typeof<Placements> ])
                "EntryStore reads back what a list of entries holds after the same placements"
                ``EntryStore reads back what a list of entries holds after the same placements``
            testPropertyWithConfig
                (fsCheck 100 [ typeof<Placements> ])
                "EntryStore with a chunk feed reads back what a list of entries holds"
                ``EntryStore with a chunk feed reads back what a list of entries holds``
            feedTests
        ]
