/// Every file the engine opens has one owner, which closes it once: a writer's segments and
/// prepared file on Dispose or when released, a reader's as soon as ReadAll returns, the read-only
/// tools' when they finish (or are abandoned), and whatever Create, Open or Repair opened before
/// they failed. A log that failed is never synced again, and says why it cannot be written.
/// The simulated disk counts open handles and refuses calls on closed ones.
module Wal.Properties.LifecycleTests

open System
open System.Threading
open Expecto
open Wal
open Wal.Simulation
open Wal.Storage
open Wal.Properties.Support

let private dir = "/data/wal"

let private entry (index: uint64) =
    Entry(1UL, index, ReadOnlyMemory(Array.create 100 (byte index)))

let private state (commit: uint64) = HardState(1UL, 0UL, commit)

let private named (suffix: string) (fs: SimulatedFileSystem) =
    fs.List dir |> List.filter (fun n -> n.EndsWith suffix)

let private closedOnce (fs: SimulatedFileSystem) (what: string) =
    Expect.equal fs.OpenHandles 0 $"{what}: every handle is closed"
    Expect.equal fs.DoubleCloses 0 $"{what}: no handle is closed twice"

/// A closed log of 40 entries of 100 B in 512-byte segments (a dozen of them).
let private segmented () =
    let fs, options = memoryOptions 512L

    do
        use wal = WriteAheadLog.Create(dir, mem "m", options)

        for i in 1UL .. 40UL do
            wal.Save(state (i - 1UL), [| entry i |])

    fs, options

let private entriesIn (options: WalOptions) =
    use wal = WriteAheadLog.OpenForRead(dir, Snapshot.Zero, options)
    wal.ReadAll().Entries.Count

let private message (action: unit -> unit) =
    try
        action ()
        ""
    with :? WalException as ex ->
        ex.Message

let tests =
    testList
        "LifecycleTests"
        [
            testCase "a writer holds each segment and the prepared file once, and Dispose closes and removes them"
            <| fun () ->
                let fs, options = memoryOptions 512L
                let wal = WriteAheadLog.Create(dir, mem "m", options)

                for i in 1UL .. 40UL do
                    wal.Save(state (i - 1UL), [| entry i |])

                let segments = named ".wal" fs
                Expect.isGreaterThan segments.Length 4 "the log was cut"
                Expect.equal (named ".tmp" fs).Length 1 "one prepared file"
                Expect.equal fs.OpenHandles (segments.Length + 1) "a handle per segment and the prepared file"
                wal.Dispose()
                closedOnce fs "Dispose"
                Expect.isEmpty (named ".tmp" fs) "the prepared file is removed"

            testCase
                "a prepared file another process holds fails the cut that needs it as Locked, and the log fails closed"
            <| fun () ->
                let fs, options = memoryOptions 512L
                let wal = WriteAheadLog.Create(dir, mem "m", options)
                // The pipeline prepares 0.tmp and 1.tmp in turn; 1.tmp is for the second cut.
                use other =
                    (fs :> IFileSystem).OpenFile(IO.Path.Combine(dir, "1.tmp"), OpenMode.CreateTruncate)

                Expect.isTrue (other.TryLock()) "the other process locks 1.tmp"

                let saveAll () =
                    for i in 1UL .. 40UL do
                        wal.Save(state (i - 1UL), [| entry i |])
                        Expect.equal wal.LastIndex i "the writer's last index"

                Expect.equal (errorKind saveAll) (Some WalErrorKind.Locked) "the second cut"
                Expect.equal (errorKind (fun () -> wal.Sync())) (Some WalErrorKind.Failed) "no more writes"
                wal.Dispose()
                other.Dispose()
                closedOnce fs "Dispose"

            testCase "a sealed segment is cut to its data, as etcd leaves it"
            <| fun () ->
                let fs, _ = segmented ()
                let segments = named ".wal" fs

                for name in List.take (segments.Length - 1) segments do
                    let bytes = fs.ReadAllBytes(IO.Path.Combine(dir, name))
                    Expect.equal bytes.Length (dataEndOf bytes) $"{name} holds no preallocated tail"

            testCase "ReleaseLockTo closes each released segment once and keeps the tail writable"
            <| fun () ->
                let fs, options = segmented ()
                let wal = WriteAheadLog.Open(dir, Snapshot.Zero, options)
                wal.ReadAll() |> ignore
                let segments = named ".wal" fs
                Expect.equal fs.OpenHandles (segments.Length + 1) "each segment and the prepared file"

                // As LockTests: the segment before the first that starts at or above the index is kept.
                let starts =
                    segments |> List.map (fun n -> Convert.ToUInt64(n.Substring(17, 16), 16))

                let released = (starts |> List.findIndex (fun s -> s >= 20UL)) - 1
                wal.ReleaseLockTo 20UL
                Expect.equal fs.OpenHandles (segments.Length + 1 - released) "the released segments are closed"
                wal.ReleaseLockTo 20UL
                Expect.equal fs.DoubleCloses 0 "releasing again closes nothing twice"
                // An index a segment starts at exactly: that segment holds the entries after it,
                // so the one before holds the index itself and is kept.
                let exact = starts[released + 3]
                wal.ReleaseLockTo exact
                Expect.equal fs.OpenHandles (segments.Length + 1 - (released + 2)) $"released below {exact}"
                wal.ReleaseLockTo 1000UL
                Expect.equal fs.OpenHandles 2 "the tail and the prepared file are kept"
                wal.Save(state 40UL, [| entry 41UL |])
                wal.Dispose()
                closedOnce fs "Dispose after releases"
                Expect.equal (entriesIn options) 41 "the Save after the releases was written"

            testCase "a read-only log closes its segments when ReadAll returns"
            <| fun () ->
                let fs, options = segmented ()
                let wal = WriteAheadLog.OpenForRead(dir, Snapshot.Zero, options)
                Expect.isGreaterThan fs.OpenHandles 0 "the segments are open for the read"
                Expect.equal (wal.ReadAll().Entries.Count) 40 "entries"
                closedOnce fs "ReadAll"
                Expect.equal wal.LastIndex 40UL "the last index read"
                wal.ReleaseLockTo 20UL
                wal.Dispose()
                closedOnce fs "Dispose"

            testCase "the read-only tools take no lock and close what they open, read to the end or abandoned"
            <| fun () ->
                let fs, options = segmented ()
                let writer = WriteAheadLog.Open(dir, Snapshot.Zero, options)
                writer.ReadAll() |> ignore
                let held = fs.OpenHandles

                Expect.equal (WalDirectory.Verify(dir, Snapshot.Zero, options)) (state 39UL) "Verify"
                Expect.equal fs.OpenHandles held "Verify closed its files"
                let survey = WalDirectory.Survey(dir, Snapshot.Zero, options)
                Expect.equal survey.LastIndex 40UL "Survey"
                Expect.equal fs.OpenHandles held "Survey closed its files"
                Expect.equal (Seq.length (survey.Entries())) 40 "the survey's entries"
                Expect.equal fs.OpenHandles held "the survey's entries closed their files"

                Expect.equal
                    (WalDirectory.ValidSnapshotEntries(dir, options) |> Seq.map _.Index |> List.ofSeq)
                    [ 0UL ]
                    "snapshots"

                Expect.equal fs.OpenHandles held "ValidSnapshotEntries closed its files"
                let records = WalDirectory.Scan(dir, options) |> Seq.length
                Expect.isGreaterThan records 80 "Scan read every record"
                Expect.equal fs.OpenHandles held "Scan closed its files"
                WalDirectory.Scan(dir, options) |> Seq.head |> ignore
                Expect.equal fs.OpenHandles held "an abandoned Scan closed its files"
                writer.Dispose()
                closedOnce fs "all"

            testCase "the read-only tools report a read error as Io and close what they opened"
            <| fun () ->
                let fs, options = segmented ()
                fs.Faults <- [ OnPath(ReadCall, ".wal") ]

                let tools: (string * (unit -> unit)) list =
                    [
                        "Verify", (fun () -> WalDirectory.Verify(dir, Snapshot.Zero, options) |> ignore)
                        "Survey", (fun () -> WalDirectory.Survey(dir, Snapshot.Zero, options) |> ignore)
                        "ValidSnapshotEntries",
                        (fun () -> WalDirectory.ValidSnapshotEntries(dir, options) |> Seq.length |> ignore)
                        "Scan", (fun () -> WalDirectory.Scan(dir, options) |> Seq.length |> ignore)
                    ]

                for name, tool in tools do
                    Expect.equal (errorKind tool) (Some WalErrorKind.Io) name
                    closedOnce fs name

                // The error met in the middle of a Scan, after records were handed out.
                fs.Faults <- []
                let scan = (WalDirectory.Scan(dir, options)).GetEnumerator()
                Expect.isTrue (scan.MoveNext()) "the first record"
                fs.Faults <- [ OnPath(ReadCall, ".wal") ]

                let rest () =
                    while scan.MoveNext() do
                        ()

                Expect.equal (errorKind rest) (Some WalErrorKind.Io) "a Scan under way"
                scan.Dispose()
                closedOnce fs "the Scan under way"

            testCase "Scan starts at the first segment there is when older ones were removed"
            <| fun () ->
                let fs, options = segmented ()
                let segments = named ".wal" fs

                for name in List.take 3 segments do
                    (fs :> IFileSystem).RemoveFile(IO.Path.Combine(dir, name))

                let records = WalDirectory.Scan(dir, options) |> List.ofSeq
                Expect.equal records.Head.Type RecordType.Crc "the first remaining segment's Crc record first"
                Expect.isGreaterThan records.Length 40 "the rest of the log"
                closedOnce fs "Scan"

            testCase "a Create that fails closes its file, leaves no DIR.tmp, and reports its own error"
            <| fun () ->
                let fs, options = memoryOptions 4096L
                fs.Faults <- [ OnPath(DataSyncCall, "wal.tmp") ]

                Expect.equal
                    (errorKind (fun () -> WriteAheadLog.Create(dir, mem "m", options).Dispose()))
                    (Some WalErrorKind.Io)
                    "the fdatasync's error"

                closedOnce fs "failed Create"
                Expect.isFalse (fs.List "/data" |> List.contains "wal.tmp") "DIR.tmp is removed"

                // When removing DIR.tmp fails too, the first error is still the one reported.
                fs.Faults <- [ OnPath(DataSyncCall, "wal.tmp"); OnPath(RemoveCall, "wal.tmp") ]

                Expect.equal
                    (errorKind (fun () -> WriteAheadLog.Create(dir, mem "m", options).Dispose()))
                    (Some WalErrorKind.Io)
                    "the fdatasync's error, not the removal's"

                closedOnce fs "failed Create, failed clean-up"
                fs.Faults <- []
                // A DIR.tmp left behind (by that failure, or a crash) is no obstacle.
                Expect.isTrue (fs.List "/data" |> List.contains "wal.tmp") "DIR.tmp was left"
                // Whatever else the stale DIR.tmp holds must not become part of the new log.
                fs.WriteAllBytes("/data/wal.tmp/0000000000000001-0000000000000005.wal", Array.create 64 7uy)
                use wal = WriteAheadLog.Create(dir, mem "m", options)
                Expect.isFalse (fs.List "/data" |> List.contains "wal.tmp") "the stale DIR.tmp was replaced"
                Expect.equal (named ".wal" fs) [ firstSegment ] "the new log's one segment, nothing of the old DIR.tmp"

            testCase "an Open that cannot prepare its tail closes every segment it opened, once"
            <| fun () ->
                let fs, options = segmented ()
                let tail = named ".wal" fs |> List.last
                fs.Faults <- [ OnPath(PreallocateCall, tail) ]
                let wal = WriteAheadLog.Open(dir, Snapshot.Zero, options)
                Expect.equal (errorKind (fun () -> wal.ReadAll() |> ignore)) (Some WalErrorKind.Io) "ReadAll"
                wal.Dispose()
                closedOnce fs "WriteAheadLog.Open"

                Expect.equal
                    (errorKind (fun () -> RaftLog.Open(dir, Snapshot.Zero, options).Dispose()))
                    (Some WalErrorKind.Io)
                    "RaftLog.Open"

                closedOnce fs "RaftLog.Open"
                fs.Faults <- []
                Expect.equal (entriesIn options) 40 "nothing was lost"

            testCase "a ReadAll that fails on a read error cannot be retried, and the log says why it cannot be written"
            <| fun () ->
                let fs, options = segmented ()
                let wal = WriteAheadLog.Open(dir, Snapshot.Zero, options)
                fs.Faults <- [ OnPath(ReadCall, ".wal") ]
                Expect.equal (errorKind (fun () -> wal.ReadAll() |> ignore)) (Some WalErrorKind.Io) "ReadAll"
                fs.Faults <- []
                Expect.equal (errorKind (fun () -> wal.ReadAll() |> ignore)) (Some WalErrorKind.InvalidState) "again"
                let save () = wal.Save(state 40UL, [| entry 41UL |])
                Expect.equal (errorKind save) (Some WalErrorKind.InvalidState) "Save"
                Expect.stringContains (message save) "ReadAll failed" "why"
                wal.Dispose()
                closedOnce fs "Dispose"

            testCase "a log not yet read, or opened read-only, says which when asked to write"
            <| fun () ->
                let _, options = segmented ()
                let save (wal: WriteAheadLog) () = wal.Save(state 40UL, [| entry 41UL |])

                do
                    use opened = WriteAheadLog.Open(dir, Snapshot.Zero, options)
                    Expect.equal (errorKind (save opened)) (Some WalErrorKind.InvalidState) "before ReadAll"
                    Expect.stringContains (message (save opened)) "Call ReadAll" "why"

                use reader = WriteAheadLog.OpenForRead(dir, Snapshot.Zero, options)
                reader.ReadAll() |> ignore
                Expect.equal (errorKind (save reader)) (Some WalErrorKind.InvalidState) "read-only"
                Expect.stringContains (message (save reader)) "OpenForRead" "why"

            testCase "after a failed fdatasync, Dispose neither writes nor syncs the log again"
            <| fun () ->
                let fs, options = memoryOptions 4096L
                let wal = WriteAheadLog.Create(dir, mem "m", options)
                wal.Save(state 0UL, [| entry 1UL |])
                fs.Faults <- [ OnPath(DataSyncCall, firstSegment) ]
                Expect.equal (errorKind (fun () -> wal.Save(state 1UL, [| entry 2UL |]))) (Some WalErrorKind.Io) "Save"
                fs.Faults <- []
                let syncs = fs.Syncs
                wal.Dispose()
                Expect.equal fs.Syncs syncs "no fdatasync retried after the failure"
                closedOnce fs "Dispose"

            testCase "Repair syncs the copy it keeps before it cuts, and closes both files"
            <| fun () ->
                let fs, options = memoryOptions 4096L

                do
                    use wal = WriteAheadLog.Create(dir, mem "m", options)

                    for i in 1UL .. 5UL do
                        wal.Save(state (i - 1UL), [| entry i |])

                let path = IO.Path.Combine(dir, firstSegment)
                let bytes = fs.ReadAllBytes path
                fs.WriteAllBytes(path, bytes[.. dataEndOf bytes - 4])
                Expect.equal (WalDirectory.Repair(dir, options)) RepairOutcome.Repaired "a torn tail"

                let broken =
                    match fs.State.Current.TryFind(path + ".broken") with
                    | Some(FileNode inode) -> fs.State.Inodes[inode]
                    | _ -> failwith "no .broken copy"

                Expect.isEmpty broken.Pending "the .broken copy is durable"
                Expect.equal broken.Durable.Length (int64 (dataEndOf bytes - 3)) "all of the old tail"
                closedOnce fs "Repair"

            testCase "Repair reports a read error as Io"
            <| fun () ->
                let fs, options = segmented ()
                fs.Faults <- [ OnPath(ReadCall, ".wal") ]

                Expect.equal
                    (errorKind (fun () -> WalDirectory.Repair(dir, options) |> ignore))
                    (Some WalErrorKind.Io)
                    ""

                closedOnce fs "Repair"

            testCase "a SaveAsync cancelled while it waits for another Save writes nothing"
            <| fun () ->
                let fs, options = memoryOptions 4096L
                use wal = WriteAheadLog.Create(dir, mem "m", options)
                use blocked = new ManualResetEventSlim(false)
                use release = new ManualResetEventSlim(false)

                // The first Save stops inside its write, holding the log, until released.
                fs.Observe <-
                    Some(fun _ _ ->
                        if not blocked.IsSet then
                            blocked.Set()
                            release.Wait())

                let first = Tasks.Task.Run(fun () -> wal.Save(state 0UL, [| entry 1UL |]))
                blocked.Wait()
                use cancel = new CancellationTokenSource()

                let second =
                    wal.SaveAsync(state 1UL, ReadOnlyMemory [| entry 2UL |], cancel.Token).AsTask()
                // Give it time to pass its first look at the token and wait for the log.
                Thread.Sleep 200
                cancel.Cancel()
                release.Set()
                first.Wait()

                Expect.throwsT<AggregateException> (fun () -> second.Wait()) "the second Save is cancelled"
                Expect.isTrue second.IsCanceled "cancelled, not failed"
                fs.Observe <- None
                wal.Dispose()
                Expect.equal (entriesIn options) 1 "only the first Save was written"
        ]
