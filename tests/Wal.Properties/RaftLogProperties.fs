/// RaftLog against the model: generated raft-like runs (Wal.Oracle's scenarios, power cuts
/// between and inside operations) on the simulated disk, with the log's whole range, first and
/// last index, terms and hard state checked against the model's entries after every operation
/// and every recovery; readers on other threads checked against the states the log went through.
module Wal.Properties.RaftLogProperties

open System
open System.Threading
open Expecto
open FsCheck
open FsCheck.FSharp
open Wal
open Wal.Model
open Wal.Simulation
open Wal.FSharp
open Wal.Oracle.Scenarios
open Wal.Properties.Support
open Wal.Properties.RaftLogRun
open Wal.Properties.RaftLogReaders

let private verdict (divergence: string option) =
    divergence.IsNone |> Prop.label (defaultArg divergence "")

let ``after every operation RaftLog shows the model's entries, first and last index, terms and hard state``
    (scenario: Scenario)
    =
    let divergence, _, _ =
        RaftLogRun.run
            { Harness.defaultConfig with
                SegmentSize = scenario.SegmentSize
            }
            scenario.Steps

    verdict divergence

let ``after power cuts between operations, RaftLog recovers to what the model allows and goes on agreeing``
    (scenario: Scenario)
    (image: int)
    =
    let divergence, _, _ =
        RaftLogRun.run
            { Harness.defaultConfig with
                SegmentSize = scenario.SegmentSize
                CrashImage = image
            }
            scenario.Steps

    verdict divergence

let ``a power cut at any mutating call of RaftLog (appends, cuts, compactions) recovers to what the model allows``
    (scenario: Scenario)
    (point: PositiveInt)
    (image: int)
    =
    let _, _, mutations =
        RaftLogRun.run
            { Harness.defaultConfig with
                SegmentSize = scenario.SegmentSize
            }
            scenario.Steps

    let crashAfter = 1 + (point.Get - 1) % max 1 mutations

    let divergence, crashes, _ =
        RaftLogRun.run
            { Harness.defaultConfig with
                SegmentSize = scenario.SegmentSize
                CrashAfter = Some crashAfter
                CrashImage = image
            }
            scenario.Steps

    (crashes = 1 |> Prop.label "the power cut happened") .&. verdict divergence
    |> Prop.label $"power cut after mutating call {crashAfter} of {mutations}, image {image}"

let private entry (term: uint64) (index: uint64) (size: int) =
    Wal.Entry(term, index, ReadOnlyMemory(Array.init size (fun i -> byte (int index + i))))

let private segmentFiles (fs: SimulatedFileSystem) =
    fs.List Dir |> List.filter (fun n -> n.EndsWith ".wal")

/// A follower installs its leader's snapshot past its log: the log starts after it, as raft's
/// storage does when it applies one, appends go on after it, and an open at it finds the same.
let ``a snapshot past the last index is an install: the log starts after it`` () =
    let fs, options = memoryOptions 512L
    let dir = "/raft"
    let log = RaftLog.Create(dir, mem "node-1", options)
    log.Append([| for i in 1UL .. 5UL -> Entry(1UL, i, String('x', 300)) |], HardState(1UL, 1UL, 3UL))
    log.SaveSnapshot(Snapshot(20UL, 2UL))

    let startsAfter (l: RaftLog) (last: uint64) =
        Expect.equal l.FirstIndex 21UL "the first index is the snapshot's + 1"
        Expect.equal l.LastIndex last "the last index"
        Expect.equal (l.Term 20UL) 2UL "the snapshot's term at its index"

        Expect.equal
            (errorKind (fun () -> l.GetEntry 3UL |> ignore))
            (Some WalErrorKind.Compacted)
            "entries before it are gone"

    startsAfter log 20UL

    Expect.equal
        (errorKind (fun () -> log.Append([| Entry(1UL, 6UL, "late") |], HardState.Empty)))
        (Some WalErrorKind.InvalidArgument)
        "an entry at or below the snapshot is refused"

    log.Append([| Entry(2UL, 21UL, "y"); Entry(2UL, 22UL, "z") |], HardState(2UL, 1UL, 21UL))
    startsAfter log 22UL
    Expect.equal (log.GetEntry 22UL).Data.Span[0] (byte 'z') "an entry appended after the install"
    log.Dispose()

    use reopened = RaftLog.Open(dir, Snapshot(20UL, 2UL), options)
    startsAfter reopened 22UL
    Expect.equal (reopened.GetEntries(21UL, 23UL).Count) 2 "both entries read back"
    Expect.equal reopened.HardState (HardState(2UL, 1UL, 21UL)) "the hard state"

/// An install's entries gone for good: raft's log ended at 2 when a term-2 leader overwrote
/// from 2, so entry 5 of term 1 was replaced; the snapshot at 4 of term 3 then installs past
/// it. In the segment the log was writing, etcd's ReadAll at 4 would return that entry 5 (it
/// skips the overwrite at 2, at or below the snapshot), a ghost a restarted raft node would
/// vote and match on (etcd-io/etcd#22442). An open at the install must find what the live log
/// showed, none.
let ``an install drops the entries before it for good: an open at it reads none back`` () =
    let _, options = memoryOptions 4096L
    let dir = "/raft"
    let log = RaftLog.Create(dir, mem "node-1", options)
    log.Append([| for i in 1UL .. 5UL -> entry 1UL i 20 |], HardState(1UL, 0UL, 0UL))
    log.Append([| entry 2UL 2UL 20 |], HardState(2UL, 0UL, 1UL))
    log.SaveSnapshot(Snapshot(4UL, 3UL))

    let startsAfterInstall (l: RaftLog) (what: string) =
        Expect.equal (l.FirstIndex, l.LastIndex) (5UL, 4UL) $"{what}: nothing past the snapshot"
        Expect.equal (l.Term 4UL) 3UL $"{what}: the snapshot's term at its index"

        Expect.equal
            (errorKind (fun () -> l.GetEntry(5UL, includeUnsynced = true) |> ignore))
            (Some WalErrorKind.Unavailable)
            $"{what}: the replaced entry 5 is not read back"

    startsAfterInstall log "live"
    log.Dispose()

    do
        use reopened = RaftLog.Open(dir, Snapshot(4UL, 3UL), options)
        startsAfterInstall reopened "reopened"
        reopened.Append([| entry 3UL 5UL 7 |], HardState(3UL, 0UL, 4UL))

    do
        // etcd reads the files the same: a read at the install starts in the segment it opened.
        use wal = WriteAheadLog.OpenForRead(dir, Snapshot(4UL, 3UL), options)
        let read = wal.ReadAll()

        Expect.equal
            [ for e in read.Entries -> e.Term, e.Index ]
            [ 3UL, 5UL ]
            "ReadAll at the install: the entry appended after it only"

/// The run the power-cut property shrank to (its replay seed in docs/testing.md), without the
/// power cut, which only made the snapshot an install: the log after an install shows nothing
/// before it, however ReadAll over every record written would read it.
let ``after an install the run shows nothing past the snapshot, live and reopened`` () =
    let entry (term: uint64) (index: uint64) : Wal.Model.Entry =
        {
            Term = term
            Index = index
            Kind = 0
            Data = Array.create 20 (byte index)
        }

    let state (term: uint64) (commit: uint64) : Wal.Model.HardState =
        {
            Term = term
            Vote = 0UL
            Commit = commit
        }

    let steps =
        [
            Do(Create [||])
            Do(Save(state 1UL 0UL, [ for i in 1UL .. 5UL -> entry 1UL i ]))
            Do(Save(state 2UL 1UL, [ entry 2UL 2UL ]))
            Do(SaveSnapshot { Index = 4UL; Term = 3UL })
            Do(Save(state 3UL 4UL, []))
        ]

    let divergence, _, _ = RaftLogRun.run Harness.defaultConfig steps
    Expect.isNone divergence "the run agrees with the model"

let tests =
    testList
        "RaftLog"
        [
            testCase
                "a snapshot past the last index is an install: the log starts after it"
                ``a snapshot past the last index is an install: the log starts after it``
            testCase
                "an install drops the entries before it for good: an open at it reads none back"
                ``an install drops the entries before it for good: an open at it reads none back``
            testCase
                "after an install the run shows nothing past the snapshot, live and reopened"
                ``after an install the run shows nothing past the snapshot, live and reopened``
            testPropertyWithConfig
                (fsCheck 100 [ typeof<Clean> ])
                "after every operation RaftLog shows the model's entries, first and last index, terms and hard state"
                ``after every operation RaftLog shows the model's entries, first and last index, terms and hard state``
            testPropertyWithConfig
                (fsCheck 100 [ typeof<WithCrashes> ])
                "after power cuts between operations, RaftLog recovers to what the model allows and goes on agreeing"
                ``after power cuts between operations, RaftLog recovers to what the model allows and goes on agreeing``
            testPropertyWithConfig
                (fsCheck 100 [ typeof<Clean> ])
                "a power cut at any mutating call of RaftLog (appends, cuts, compactions) recovers to what the model allows"
                ``a power cut at any mutating call of RaftLog (appends, cuts, compactions) recovers to what the model allows``
            testPropertyWithConfig
                (fsCheck 50 [ typeof<Clean> ])
                "readers on other threads, during appends, overwrites and compactions, each see a state the model went through"
                ``readers on other threads, during appends, overwrites and compactions, each see a state the model went through``

            testCase "a reader sees an entry only once it is synced, unless it asks for unsynced entries"
            <| fun () ->
                let fs, options = memoryOptions 4096L
                use log = RaftLog.Create(Dir, mem "m", options)
                let mutable acknowledged = 0UL
                let mutable earlyReads = 0

                fs.Observe <-
                    Some(fun _ _ ->
                        let l = log

                        Expect.isLessThanOrEqual
                            l.LastIndex
                            acknowledged
                            "the synced view runs ahead of the acknowledged appends"

                        if l.LastWrittenIndex > acknowledged then
                            let index = l.LastWrittenIndex

                            Expect.equal
                                (errorKind (fun () -> l.GetEntry index |> ignore))
                                (Some WalErrorKind.Unavailable)
                                "an unsynced entry read by default"

                            Expect.equal
                                (l.GetEntry(index, includeUnsynced = true)).Index
                                index
                                "the unsynced entry, asked for"

                            earlyReads <- earlyReads + 1)

                // The commit trails the appends by six, so entry 25 may still be overwritten.
                for i in 1UL .. 30UL do
                    log.Append([| entry 1UL i 300 |], HardState(1UL, 0UL, (if i > 6UL then i - 6UL else 0UL)))
                    acknowledged <- i

                // An overwrite: the replaced suffix is gone from every view at once, and the new entries come once synced.
                log.Append([| entry 2UL 25UL 10 |], HardState(2UL, 0UL, 24UL))
                acknowledged <- 25UL
                fs.Observe <- None
                Expect.isGreaterThan earlyReads 0 "the unsynced entries were seen between the write and the fdatasync"
                Expect.equal log.LastIndex 25UL "the last index after the overwrite"
                Expect.equal (log.Term 25UL) 2UL "the overwriting entry's term"

            testCase
                "CompactTo removes the segments below the snapshot oldest first, and what is left opens with etcd's rules and dumps"
            <| fun () ->
                let fs, options = memoryOptions 1024L
                let log = RaftLog.Create(Dir, mem "m", options)

                for i in 1UL .. 40UL do
                    log.Append([| entry 1UL i 200 |], HardState(1UL, 0UL, i))

                let before = segmentFiles fs
                log.SaveSnapshot(Wal.Snapshot(30UL, 1UL))

                Expect.equal
                    (errorKind (fun () -> log.CompactTo 31UL))
                    (Some WalErrorKind.InvalidArgument)
                    "past the snapshot"

                let held = fs.OpenHandles
                log.CompactTo 20UL
                let after = segmentFiles fs
                Expect.isLessThan after.Length before.Length "segments were removed"
                // Each segment is open twice (the writer's lock, the readers' file): a removed
                // segment lets go of both, a kept one of neither.
                Expect.equal
                    fs.OpenHandles
                    (held - 2 * (before.Length - after.Length))
                    "the removed segments' handles are closed, the kept ones' are not"

                Expect.equal after (before |> List.skip (before.Length - after.Length)) "the newest are kept"
                Expect.equal log.FirstIndex 21UL "first index"
                Expect.equal (log.Term 20UL) 1UL "the compacted index keeps its term"

                Expect.equal
                    (errorKind (fun () -> log.GetEntry 20UL |> ignore))
                    (Some WalErrorKind.Compacted)
                    "compacted"

                Expect.equal
                    (errorKind (fun () -> log.GetEntry 41UL |> ignore))
                    (Some WalErrorKind.Unavailable)
                    "unavailable"

                Expect.equal (log.GetEntries(21UL, 41UL)).Count 20 "the rest"
                log.Dispose()
                Expect.equal fs.OpenHandles 0 "Dispose closes the rest"
                Expect.equal fs.DoubleCloses 0 "and closes nothing twice"
                Expect.equal (errorKind (fun () -> log.FirstIndex |> ignore)) (Some WalErrorKind.Closed) "closed"
                // What is left: etcd's ReadAll at the snapshot, and a dump from the first file left.
                use wal = WriteAheadLog.Open(Dir, Wal.Snapshot(30UL, 1UL), options)
                let read = wal.ReadAll()

                Expect.equal
                    (read.Entries |> Seq.map (fun e -> e.Index) |> List.ofSeq)
                    [ 31UL .. 40UL ]
                    "ReadAll at the snapshot"

                Expect.isGreaterThan (WalDirectory.Scan(Dir, options) |> Seq.length) 0 "Scan from the first file left"

            testCase "GetEntries keeps raft's size limit: the first entry always, then whole entries while they fit"
            <| fun () ->
                let _, options = memoryOptions 65536L
                use log = RaftLog.Create(Dir, mem "m", options)
                log.Append([| for i in 1UL .. 10UL -> entry 1UL i 100 |], HardState(1UL, 0UL, 0UL))
                let size = uint64 (100 + 3 + 1 + 1 + 1 + 1 + 1) // raftpb.Entry: four tags, three one-byte varints, a length

                Expect.equal (log.GetEntries(1UL, 11UL, 1UL)).Count 1 "one entry over the limit"
                Expect.equal (log.GetEntries(1UL, 11UL, 3UL * size)).Count 3 "three fit exactly"
                Expect.equal (log.GetEntries(1UL, 11UL, 3UL * size - 1UL)).Count 2 "three do not fit"
                Expect.equal (log.GetEntries(5UL, 5UL)).Count 0 "an empty range"

                Expect.equal
                    (errorKind (fun () -> log.GetEntries(6UL, 5UL) |> ignore))
                    (Some WalErrorKind.InvalidArgument)
                    "lo above hi"

                Expect.equal
                    (errorKind (fun () -> log.Append([| entry 1UL 12UL 1 |], HardState.Empty)))
                    (Some WalErrorKind.InvalidArgument)
                    "a gap"
        ]
