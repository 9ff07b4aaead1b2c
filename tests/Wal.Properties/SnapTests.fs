/// Wal.Snap on its own: snapshot files read back what was saved, names follow etcd's pattern,
/// a search passes over broken and unmatched files (renaming the broken ones only when asked),
/// and a save cut by a power failure at any call leaves the old snapshot or the new one.
module Wal.Properties.SnapTests

open System
open System.IO
open Expecto
open Wal
open Wal.Snap
open Wal.Storage
open Wal.Simulation
open Wal.Properties.Support

let private members = ConfState([ 1UL; 2UL ], [ 3UL ], [ 1UL ], [ 4UL ], true)

let private snap (index: uint64) (term: uint64) =
    RaftSnapshot(index, term, ReadOnlyMemory(bytes $"state at {index}"), members)

/// A snapshot directory on the in-memory disk.
let private memorySnapshotter () =
    let fs, options = memoryOptions 65536L
    fs, options, Snapshotter("/data/snap", options)

let private flipByte (fs: SimulatedFileSystem) (path: string) (offset: int) =
    let b = fs.ReadAllBytes path
    b[offset] <- b[offset] ^^^ 0x10uy
    fs.WriteAllBytes(path, b)

let private names (fs: SimulatedFileSystem) = fs.List "/data/snap"

let tests =
    testList
        "SnapTests"
        [
            test "names are %016x-%016x.snap of term and index, and parse back" {
                Expect.equal (SnapName.Format(2UL, 1002UL)) "0000000000000002-00000000000003ea.snap" ""
                let ok, term, index = SnapName.TryParse "0000000000000002-00000000000003ea.snap"
                Expect.isTrue ok ""
                Expect.equal (term, index) (2UL, 1002UL) ""

                for bad in
                    [
                        "2-3ea.snap"
                        "0000000000000002-00000000000003ea.wal"
                        "000000000000000g-00000000000003ea.snap"
                    ] do
                    let ok, _, _ = SnapName.TryParse bad
                    Expect.isFalse ok bad
            }

            test "a saved snapshot reads back equal, under its etcd name, with no temporary file left" {
                let fs, options, snapshotter = memorySnapshotter ()
                let path = snapshotter.Save(snap 1002UL 2UL)
                Expect.equal path "/data/snap/0000000000000002-00000000000003ea.snap" ""
                Expect.equal (names fs) [ "0000000000000002-00000000000003ea.snap" ] ""
                Expect.equal (Snapshotter.Read(path, options)) (snap 1002UL 2UL) ""
            }

            test "no snapshot: an empty or missing directory finds none" {
                let _, _, snapshotter = memorySnapshotter ()
                let search = snapshotter.LoadNewest()
                Expect.isFalse search.Found ""
                Expect.equal search.WalSnapshot Snapshot.Zero ""
                Expect.isEmpty search.Skipped ""
            }

            test "an index-0 snapshot is refused (etcd saves none)" {
                let _, _, snapshotter = memorySnapshotter ()

                Expect.equal
                    (errorKind (fun () -> snapshotter.Save(RaftSnapshot(0UL, 0UL, ReadOnlyMemory.Empty)) |> ignore))
                    (Some WalErrorKind.InvalidArgument)
                    ""
            }

            test "Read names the damage: CrcMismatch, an empty file, bytes that are not a snapshot" {
                let fs, options, snapshotter = memorySnapshotter ()
                let path = snapshotter.Save(snap 5UL 1UL)
                let good = fs.ReadAllBytes path
                flipByte fs path (good.Length - 3)

                Expect.equal
                    (errorKind (fun () -> Snapshotter.Read(path, options) |> ignore))
                    (Some WalErrorKind.CrcMismatch)
                    ""

                fs.WriteAllBytes(path, [||])

                Expect.equal
                    (errorKind (fun () -> Snapshotter.Read(path, options) |> ignore))
                    (Some WalErrorKind.CorruptRecord)
                    ""

                fs.WriteAllBytes(path, good[.. good.Length - 4])

                Expect.equal
                    (errorKind (fun () -> Snapshotter.Read(path, options) |> ignore))
                    (Some WalErrorKind.CorruptRecord)
                    ""

                Expect.equal
                    (errorKind (fun () -> Snapshotter.Read("/data/snap/none.snap", options) |> ignore))
                    (Some WalErrorKind.FileNotFound)
                    ""
            }

            test "LoadNewest passes over broken files, newest first, and renames them *.broken as etcd does" {
                let fs, _, snapshotter = memorySnapshotter ()

                for i in 1UL .. 3UL do
                    snapshotter.Save(snap (i * 10UL) 1UL) |> ignore

                let newest = "/data/snap/" + SnapName.Format(1UL, 30UL)
                flipByte fs newest 12
                fs.WriteAllBytes("/data/snap/notes.txt", bytes "not a snapshot")

                let search = snapshotter.LoadNewest()
                Expect.equal search.Snapshot (snap 20UL 1UL) ""

                Expect.equal
                    (search.Skipped |> Seq.map (fun s -> s.FileName, s.Reason) |> List.ofSeq)
                    [ SnapName.Format(1UL, 30UL), SkipReason.Broken ]
                    ""

                Expect.contains (names fs) (SnapName.Format(1UL, 30UL) + ".broken") "renamed"

                Expect.equal
                    (snapshotter.Names() |> List.ofSeq)
                    [ SnapName.Format(1UL, 20UL); SnapName.Format(1UL, 10UL) ]
                    ""
            }

            test "a search with markBroken = false changes nothing" {
                let fs, _, snapshotter = memorySnapshotter ()
                snapshotter.Save(snap 10UL 1UL) |> ignore
                snapshotter.Save(snap 20UL 1UL) |> ignore
                fs.WriteAllBytes("/data/snap/" + SnapName.Format(1UL, 30UL), [||])
                let before = names fs
                let search = snapshotter.LoadNewest(markBroken = false)
                Expect.equal search.Snapshot (snap 20UL 1UL) ""
                Expect.equal search.Skipped.Count 1 ""
                Expect.equal (names fs) before ""
            }

            test "LoadNewestAvailable takes the newest snapshot the WAL holds a valid record of" {
                let fs, options, snapshotter = memorySnapshotter ()

                do
                    use wal = WriteAheadLog.Create("/data/wal", mem "meta", options)
                    wal.Save(HardState(1UL, 1UL, 25UL), [ for i in 1UL .. 30UL -> Entry(1UL, i, mem $"e{i}") ])
                    wal.SaveSnapshot(Snapshot(10UL, 1UL))
                    wal.SaveSnapshot(Snapshot(20UL, 1UL))
                    // Past the commit index: not a place to start from.
                    wal.SaveSnapshot(Snapshot(30UL, 1UL))

                for i in [ 10UL; 20UL; 30UL; 40UL ] do
                    snapshotter.Save(snap i 1UL) |> ignore

                let search = snapshotter.LoadNewestAvailable("/data/wal")
                Expect.equal search.Snapshot (snap 20UL 1UL) ""

                Expect.equal
                    (search.Skipped |> Seq.map (fun s -> s.Reason) |> List.ofSeq)
                    [ SkipReason.NotInWal; SkipReason.NotInWal ]
                    "40 (no record) and 30 (past the commit)"

                Expect.equal (names fs |> List.filter (fun n -> n.EndsWith ".broken")) [] "nothing renamed"

                let search =
                    snapshotter.LoadNewestAvailable([ Snapshot(10UL, 1UL); Snapshot(20UL, 2UL) ])

                Expect.equal search.Snapshot (snap 10UL 1UL) "the term must match too"
            }

            test
                "a save cut by a power failure after any call leaves the old snapshot or the new one, never a broken file" {
                let seeds = [ 1..5 ]
                let mutable points = 0
                let mutable sawNew = false

                // Count the mutating calls of one save, to try a cut after each.
                let calls =
                    let fs, _, snapshotter = memorySnapshotter ()
                    snapshotter.Save(snap 10UL 1UL) |> ignore
                    let before = fs.Mutations
                    snapshotter.Save(snap 20UL 1UL) |> ignore
                    fs.Mutations - before

                for cut in 0..calls do
                    let fs, _, snapshotter = memorySnapshotter ()
                    snapshotter.Save(snap 10UL 1UL) |> ignore
                    fs.CrashAfter <- Some(fs.Mutations + cut)

                    try
                        snapshotter.Save(snap 20UL 1UL) |> ignore
                    with :? WalException ->
                        ()

                    for seed in seeds do
                        let after = fs.AfterPowerCut seed
                        let options = WalOptions(FileSystem = after, PrepareSegmentsInBackground = false)
                        let search = Snapshotter("/data/snap", options).LoadNewest(markBroken = false)
                        points <- points + 1

                        Expect.isEmpty
                            search.Skipped
                            $"cut after {cut} calls, seed {seed}: {search.Skipped |> List.ofSeq}"

                        Expect.isTrue (search.Snapshot = snap 10UL 1UL || search.Snapshot = snap 20UL 1UL) ""
                        sawNew <- sawNew || search.Snapshot = snap 20UL 1UL

                Expect.isTrue sawNew "the save completes when the cut comes after it"
                Expect.isGreaterThan points 5 ""
            }
        ]
