/// Runs the crash properties found failing, written out as steps so that they outlive any change
/// to the generators, each with the engine-level fact behind it. Both bugs were older than the
/// properties that found them; each example fails on the engine from before its fix.
module Wal.Properties.CrashExamples

open System
open Expecto
open Wal
open Wal.Model
open Wal.Simulation
open Wal.Simulation.Harness
open Wal.Properties.Support

let private hardState term vote commit : HardState =
    {
        Term = term
        Vote = vote
        Commit = commit
    }

let private entry term index (size: int) : Wal.Model.Entry =
    {
        Term = term
        Index = index
        Kind = 0
        Data = Array.init size byte
    }

let private entries term (indexes: uint64 list) =
    indexes |> List.map (fun i -> entry term i (100 + 37 * int i))

let private at index term : Wal.Model.Snapshot = { Index = index; Term = term }

let private passes (result: RunResult) =
    Expect.isNone result.Divergence (defaultArg result.Divergence "")

/// A snapshot past the last entry (one a follower installs from its leader), then a reopen at an
/// older snapshot and a cut: the cut named the new segment for the last entry's index, at or
/// below the snapshot's, so an Open at the snapshot started its search past the snapshot record
/// and read SnapshotNotFound. Found by "a power cut at any call ..." with replay
/// (12073186980036708786UL, 6245815250848826809UL, Some 60); the power cut there only made the
/// snapshot outrun the entries.
let private snapshotPastTheEntries =
    [
        Do(Create(Array.create 4731 1uy))
        Do(SaveSnapshot(at 4UL 1UL))
        Do Close
        Do(Open Snapshot.zero)
        // Segments are smaller than the metadata, so this Save cuts.
        Do(Save(hardState 2UL 3UL 4UL, []))
        Do Close
        Do(Open(at 4UL 1UL))
    ]

/// After a failed fdatasync and a power cut, recovery at a snapshot the crash took read from a
/// later segment that holds no hard state, so raft's invariants knew no commit; the engine then
/// took a Save committing past the entries the crash left, and a read of the whole log refused
/// that hard state as damage. Found by "after a failed fdatasync ..." with replay
/// (10508909860933944044UL, 5304603855021358707UL, Some 74), shrunk by FsCheck.
let private commitPastAPartialRead =
    [
        Do(Create(Array.create 7363 2uy))
        Do(Save(HardState.empty, entries 1UL [ 1UL; 2UL; 3UL ]))
        Do(Save(HardState.empty, entries 1UL [ 3UL ]))
        Do(Save(hardState 1UL 3UL 3UL, entries 1UL [ 4UL; 5UL; 6UL ]))
        Do(Save(HardState.empty, entries 1UL [ 7UL; 8UL; 9UL ]))
        Do(Save(hardState 1UL 3UL 6UL, entries 1UL [ 8UL; 9UL; 10UL; 11UL ]))
        Do(Save(hardState 2UL 3UL 12UL, entries 2UL [ 12UL ]))
        Do(Save(hardState 2UL 3UL 13UL, entries 2UL [ 13UL ]))
        Do(Save(HardState.empty, entries 2UL [ 14UL; 15UL ]))
        Do(SaveSnapshot(at 12UL 2UL))
        Do(Save(hardState 2UL 3UL 15UL, entries 2UL [ 16UL; 17UL ]))
        Do Close
        Do(Open(at 12UL 2UL))
        Do(Save(hardState 2UL 3UL 18UL, entries 2UL [ 18UL; 19UL ]))
        Do(Save(hardState 3UL 3UL 19UL, entries 3UL [ 19UL; 20UL; 21UL; 22UL ]))
        Do(Save(hardState 3UL 3UL 23UL, entries 3UL [ 23UL; 24UL ]))
        Do(Save(hardState 3UL 3UL 23UL, []))
        Happen(HarnessEvent.PowerLoss(Some 0))
        Do(Open Snapshot.zero)
    ]

let private name (fileName: string) =
    match Wal.Format.SegmentName.TryParse fileName with
    | true, n -> n.Sequence, n.Index
    | _ -> failwith $"not a segment name: {fileName}"

/// The record types in a segment's bytes, in order (etcd's: metadata 1, entry 2, state 3, crc 4, snapshot 5).
let private recordTypes (file: byte[]) = framesOf file |> List.map _.Type

/// This file's tests.
let tests =
    testList
        "CrashExamples"
        [
            // Found by RaftLog's power-cut property once installs removed the segments before
            // them: a read that starts at such a segment lost the term, vote and commit.
            testCase "after a reopen, a cut before the first Save of a hard state repeats the one the read ended with"
            <| fun () ->
                let fs, options = memoryOptions 512L
                let dir = "/wal"

                do
                    use wal = WriteAheadLog.Create(dir, mem "node-1", options)
                    wal.Save(Wal.HardState(2UL, 1UL, 1UL), [| Wal.Entry(2UL, 1UL, "a") |])

                do
                    use wal = WriteAheadLog.Open(dir, Wal.Snapshot.Zero, options)
                    wal.ReadAll() |> ignore
                    // Bare entries, larger than a segment: the Save cuts.
                    wal.Save(Wal.HardState.Empty, [| Wal.Entry(2UL, 2UL, String('x', 600)) |])
                    wal.Save(Wal.HardState.Empty, [| Wal.Entry(2UL, 3UL, String('y', 600)) |])

                let last = fs.List dir |> List.filter (fun n -> n.EndsWith ".wal") |> List.max
                let types = recordTypes (fs.ReadAllBytes(System.IO.Path.Combine(dir, last)))

                Expect.equal
                    (List.truncate 3 types)
                    [ 4; 1; 3 ]
                    $"{last} starts with crc, metadata and the hard state read"

            testCase "a snapshot past the last entry: every power cut, reopen and cut still finds it"
            <| fun () ->
                passes (
                    run
                        { defaultConfig with
                            SegmentSize = 4096L
                        }
                        snapshotPastTheEntries
                )

                let clean =
                    run
                        { defaultConfig with
                            SegmentSize = 4096L
                        }
                        snapshotPastTheEntries

                for crash in 1 .. clean.Mutations do
                    for image in 0..3 do
                        run
                            { defaultConfig with
                                SegmentSize = 4096L
                                CrashAfter = Some crash
                                CrashImage = image
                                Garbage = image % 2 = 1
                            }
                            snapshotPastTheEntries
                        |> passes

            testCase "a cut after a snapshot past the last entry names its segment after the snapshot"
            <| fun () ->
                let fs, options = memoryOptions 4096L
                let dir = "/wal"
                let metadata = ReadOnlyMemory(Array.create 4731 1uy)

                do
                    use wal = WriteAheadLog.Create(dir, metadata, options)
                    wal.Save(Wal.HardState(1UL, 0UL, 2UL), [| Wal.Entry(1UL, 1UL, "a"); Wal.Entry(1UL, 2UL, "b") |])
                    wal.SaveSnapshot(Wal.Snapshot(9UL, 1UL))

                do
                    use wal = WriteAheadLog.Open(dir, Wal.Snapshot.Zero, options)
                    wal.ReadAll() |> ignore
                    wal.Save(Wal.HardState(2UL, 0UL, 9UL), [||])

                // etcd 3.4 names it for entry 3, below the snapshot at 9.
                let last = fs.List dir |> List.filter (fun n -> n.EndsWith ".wal") |> List.max
                Expect.equal (snd (name last)) 10UL $"{last} is named for the index after the snapshot"

                use wal = WriteAheadLog.Open(dir, Wal.Snapshot(9UL, 1UL), options)
                let read = wal.ReadAll()
                Expect.equal read.State.Commit 9UL "the snapshot is found and the state read"

            testCase
                "after a failed fdatasync and a power cut, a commit past what the crash left is refused, and the log reads back"
            <| fun () ->
                for nth in 1..12 do
                    run
                        { defaultConfig with
                            SegmentSize = 512L
                            Faults = [ NthCall(DataSyncCall, nth) ]
                        }
                        commitPastAPartialRead
                    |> passes

            testCase
                "a writer that opened at a later segment with no hard state refuses a commit past the segment's name"
            <| fun () ->
                let _, options = memoryOptions 512L
                let dir = "/wal"
                let metadata = ReadOnlyMemory(Array.create 1000 1uy)

                do
                    // Every Save cuts (the metadata is larger than a segment), and no hard state is
                    // saved before the cuts, so the later segments hold none.
                    use wal = WriteAheadLog.Create(dir, metadata, options)
                    wal.Save(Wal.HardState.Empty, [| Wal.Entry(1UL, 1UL, "a") |])
                    wal.Save(Wal.HardState.Empty, [| Wal.Entry(1UL, 2UL, "b") |])
                    wal.SaveSnapshot(Wal.Snapshot(2UL, 1UL))

                do
                    // Opened at index 2, the read starts at the segment named for index 2, past the first.
                    use wal = WriteAheadLog.Open(dir, Wal.Snapshot(2UL, 1UL), options)
                    wal.ReadAll() |> ignore

                    let refused = errorKind (fun () -> wal.Save(Wal.HardState(1UL, 0UL, 7UL), [||]))

                    Expect.equal refused (Some WalErrorKind.InvalidArgument) "a commit past index 2 is refused"
                    wal.Save(Wal.HardState(1UL, 0UL, 2UL), [||])

                use wal = WriteAheadLog.Open(dir, Wal.Snapshot.Zero, options)
                let read = wal.ReadAll()
                Expect.equal read.State.Commit 2UL "the whole log reads back, strict"
        ]
