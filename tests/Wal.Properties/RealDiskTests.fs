/// The engine on the real disk, end to end: cuts, a snapshot, a torn tail, Repair, reopen and append.
module Wal.Properties.RealDiskTests

open Expecto
open System
open System.IO
open Wal
open Wal.Properties.Support
open Wal.Properties.LogFixtures

// ---------------------------------------------------------------------------------------------
// Real disk, end to end

let ``real disk: cuts, a snapshot, a torn tail, UnexpectedEof, Repair, reopen and append`` () =
    use tmp = new TempDir()
    let options = WalOptions(SegmentSizeBytes = 8L * 1024L)

    let big (i: uint64) =
        Entry(1UL, i, ReadOnlyMemory(Array.init 700 (fun j -> byte ((int i + j) % 251 + 1))))

    let segments () =
        Directory.GetFiles(tmp.Path, "*.wal") |> Array.sort

    Expect.isFalse (WalDirectory.Exists(tmp.Path, options)) ""
    let mutable n = 0UL

    do
        use wal = WriteAheadLog.Create(tmp.Path, mem "node-1", options)

        while (segments ()).Length < 3 do
            n <- n + 1UL
            wal.Save(HardState(1UL, 1UL, n - 1UL), [ big n ])

        Expect.isGreaterThan n 10UL ""
        wal.SaveSnapshot(Snapshot(10UL, 1UL))
        wal.Save(HardState.Empty, [ big (n + 1UL) ])

    Expect.isTrue (WalDirectory.Exists(tmp.Path, options)) ""
    Expect.equal (WalDirectory.Verify(tmp.Path, Snapshot(10UL, 1UL), options)) (HardState(1UL, 1UL, n - 1UL)) ""
    let all = [ for i in 1UL .. n + 1UL -> big i ]

    do
        use wal = WriteAheadLog.OpenForRead(tmp.Path, Snapshot.Zero, options)
        Expect.equal (entryList (wal.ReadAll())) all ""

    // Tear the last record of the last segment.
    let last = (segments ())[(segments ()).Length - 1]
    let lastFrame = framesOf (File.ReadAllBytes last) |> List.last
    Expect.equal lastFrame.Type 2 "the last record is the last entry"
    let damaged = (File.ReadAllBytes last)[.. lastFrame.Offset + lastFrame.Size / 2 - 1]
    File.WriteAllBytes(last, damaged)

    assertKind WalErrorKind.UnexpectedEof (fun () ->
        use wal = WriteAheadLog.Open(tmp.Path, Snapshot.Zero, options)
        wal.ReadAll() |> ignore)

    do
        use wal = WriteAheadLog.OpenForRead(tmp.Path, Snapshot.Zero, options)
        Expect.equal (entryList (wal.ReadAll())) (List.take (int n) all) ""

    Expect.equal (WalDirectory.Repair(tmp.Path, options)) RepairOutcome.Repaired ""
    Expect.equal (File.ReadAllBytes(last + ".broken")) damaged ""

    do
        use wal = WriteAheadLog.Open(tmp.Path, Snapshot(10UL, 1UL), options)
        let r = wal.ReadAll()
        Expect.equal (entryList r) [ for i in 11UL .. n -> big i ] ""
        Expect.equal r.State (HardState(1UL, 1UL, n - 1UL)) ""
        Expect.equal (r.Metadata.ToArray()) (bytes "node-1") ""
        wal.Save(HardState(1UL, 1UL, n), [ big (n + 1UL); big (n + 2UL) ])

    use wal = WriteAheadLog.OpenForRead(tmp.Path, Snapshot.Zero, options)
    let r = wal.ReadAll()
    Expect.equal (entryList r) [ for i in 1UL .. n + 2UL -> big i ] ""
    Expect.equal r.State (HardState(1UL, 1UL, n)) ""

/// This file's tests.
let tests =
    testList
        "RealDiskTests"
        [
            testCase
                "real disk: cuts, a snapshot, a torn tail, UnexpectedEof, Repair, reopen and append"
                ``real disk: cuts, a snapshot, a torn tail, UnexpectedEof, Repair, reopen and append``
        ]
