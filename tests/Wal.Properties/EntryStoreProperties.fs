/// The columns ReadAll keeps its entries in (Reading.EntryStore) against a list of entries: any
/// run of appends and overwrites, with payloads empty, small, chunk-filling and large, reads
/// back as the list does.
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

let ``EntryStore reads back what a list of entries holds after the same placements``
    (snapshot: byte)
    (placements: Placement list)
    =
    let first = uint64 snapshot + 1UL
    let store = EntryStore(uint64 snapshot)
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

/// This file's tests.
let tests =
    testList
        "EntryStoreProperties"
        [
            testPropertyWithConfig
                (fsCheck 200 [ typeof<Placements> ])
                "EntryStore reads back what a list of entries holds after the same placements"
                ``EntryStore reads back what a list of entries holds after the same placements``
        ]
