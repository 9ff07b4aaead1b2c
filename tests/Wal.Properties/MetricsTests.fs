/// The metrics on the "Wal" meter, seen through a MeterListener: fdatasync and cut durations,
/// bytes, entries and records, cuts; and that listening keeps Save free of allocations per entry.
module Wal.Properties.MetricsTests

open System
open System.Collections.Generic
open System.Diagnostics.Metrics
open System.IO
open Expecto
open Wal
open Wal.Simulation
open Wal.Properties.Support

/// What the instruments recorded on this thread while `action` ran: each instrument's measurements.
let private measured (action: unit -> unit) =
    let thread = Environment.CurrentManagedThreadId
    let seen = Dictionary<string, ResizeArray<float>>()
    use listener = new MeterListener()

    listener.InstrumentPublished <-
        fun instrument l ->
            if instrument.Meter.Name = WalMetrics.MeterName then
                l.EnableMeasurementEvents instrument

    let record (instrument: Instrument) (value: float) =
        if Environment.CurrentManagedThreadId = thread then
            lock seen (fun () ->
                match seen.TryGetValue instrument.Name with
                | true, values -> values.Add value
                | _ -> seen[instrument.Name] <- ResizeArray [ value ])

    listener.SetMeasurementEventCallback<int64>(fun instrument value _ _ -> record instrument (float value))
    listener.SetMeasurementEventCallback<float>(fun instrument value _ _ -> record instrument value)
    listener.Start()
    action ()
    listener.Dispose()

    fun (name: string) ->
        match seen.TryGetValue name with
        | true, values -> List.ofSeq values
        | _ -> []

let private entry (index: uint64) =
    Entry(1UL, index, ReadOnlyMemory(Array.create 100 (byte index)))

let tests =
    testList
        "Metrics"
        [
            testCase "the Wal meter reports fdatasyncs, bytes, entries, records and cuts as the log makes them"
            <| fun () ->
                let fs, options = memoryOptions 4096L
                let mutable wal = Unchecked.defaultof<WriteAheadLog>
                let mutable syncsBefore = 0

                let seen =
                    measured (fun () ->
                        wal <- WriteAheadLog.Create("/data/wal", mem "m", options)
                        syncsBefore <- fs.Syncs

                        for i in 1UL .. 100UL do
                            wal.Save(HardState(1UL, 0UL, i - 1UL), [| entry i |])

                        wal.Dispose())

                let segments = fs.List "/data/wal" |> List.filter (fun n -> n.EndsWith ".wal")

                let dataBytes =
                    segments
                    |> List.sumBy (fun n -> int64 (dataEndOf (fs.ReadAllBytes(Path.Combine("/data/wal", n)))))

                Expect.equal (seen WalMetrics.EntriesAppended |> List.sum) 100.0 "entries"
                // 100 entries and 100 states; Crc, metadata and the zero snapshot; Crc, metadata and a state per cut.
                let cuts = segments.Length - 1

                Expect.equal (seen WalMetrics.RecordsAppended |> List.sum) (float (200 + 3 + 3 * cuts)) "records"
                Expect.isGreaterThanOrEqual cuts 2 "the log was cut"
                Expect.equal (seen WalMetrics.SegmentsCut |> List.sum) (float cuts) "cuts counted"
                Expect.equal (seen WalMetrics.CutDuration).Length cuts "a duration per cut"

                Expect.equal
                    (seen WalMetrics.BytesWritten |> List.sum)
                    (float dataBytes)
                    "bytes: every segment's data, once"
                // One fdatasync per Save (the ones that cut seal the old tail and sync the new one), one on close.
                let fsyncs = seen WalMetrics.FsyncDuration
                Expect.isGreaterThanOrEqual fsyncs.Length 101 "an fdatasync per Save, and the close"
                Expect.isTrue (fsyncs |> List.forall (fun s -> s >= 0.0 && s < 10.0)) "durations in seconds"

            testCase
                "snapshots, cuts of a log without a hard state, and records larger than the page buffer are counted"
            <| fun () ->
                let fs, options = memoryOptions 1_000_000L
                // Entries of 300 KiB: past the page buffer, so whole pages go straight to the file.
                let large (index: uint64) =
                    Entry(1UL, index, ReadOnlyMemory(Array.create (300 * 1024) (byte index)))

                let seen =
                    measured (fun () ->
                        use wal = WriteAheadLog.Create("/data/wal", mem "m", options)

                        for i in 1UL .. 8UL do
                            wal.Save(HardState.Empty, [| large i |])

                        wal.SaveSnapshot(Snapshot(4UL, 1UL)))

                let segments = fs.List "/data/wal" |> List.filter (fun n -> n.EndsWith ".wal")
                let cuts = segments.Length - 1
                Expect.isGreaterThanOrEqual cuts 2 "the log was cut"

                let dataBytes =
                    segments
                    |> List.sumBy (fun n -> int64 (dataEndOf (fs.ReadAllBytes(Path.Combine("/data/wal", n)))))

                // 8 entries and the snapshot; Crc, metadata and the zero snapshot; a cut with no
                // hard state to carry writes only its Crc and metadata.
                Expect.equal (seen WalMetrics.RecordsAppended |> List.sum) (float (8 + 1 + 3 + 2 * cuts)) "records"
                Expect.equal (seen WalMetrics.EntriesAppended |> List.sum) 8.0 "entries"

                Expect.equal
                    (seen WalMetrics.BytesWritten |> List.sum)
                    (float dataBytes)
                    "bytes: every segment's data, once"

            testCase "wal.bytes.zeroed counts the zeros written ahead of the records, and wal.bytes.written does not"
            <| fun () ->
                let fs = SimulatedFileSystem()
                let ahead = 64 * 1024

                let options =
                    WalOptions(
                        FileSystem = fs,
                        SegmentSizeBytes = 1_000_000L,
                        PrepareSegmentsInBackground = false,
                        ZeroAheadBytes = ahead
                    )

                let seen =
                    measured (fun () ->
                        use wal = WriteAheadLog.Create("/data/wal", mem "m", options)

                        for i in 1UL .. 2000UL do
                            wal.Save(HardState(1UL, 0UL, i - 1UL), [| entry i |]))

                let segment =
                    fs.List "/data/wal"
                    |> List.filter (fun n -> n.EndsWith ".wal")
                    |> List.exactlyOne

                let dataBytes =
                    int64 (dataEndOf (fs.ReadAllBytes(Path.Combine("/data/wal", segment))))

                let zeroed = seen WalMetrics.BytesZeroed |> List.sum
                Expect.equal (seen WalMetrics.BytesWritten |> List.sum) (float dataBytes) "written: the records alone"
                // Each zero-ahead covers the next 64 KiB from where the records reached past the last one.
                Expect.isTrue (zeroed > 0.0 && zeroed % float ahead = 0.0) $"whole zero-aheads ({zeroed})"
                Expect.isGreaterThanOrEqual zeroed (float (dataBytes - int64 ahead)) "ahead of about every record"
                Expect.isLessThanOrEqual zeroed (float (dataBytes + int64 ahead)) "and not much further"

            testCase "with the meter listened to, Save on a real disk allocates nothing per entry"
            <| fun () ->
                use dir = new TempDir()
                use wal = WriteAheadLog.Create(dir.Path, mem "m")
                let batch = Array.init 100 (fun i -> entry (uint64 i + 1UL))

                let save (n: int) =
                    for e in 0 .. batch.Length - 1 do
                        let i = uint64 (n * batch.Length + e + 1)
                        batch[e] <- Entry(1UL, i, batch[e].Data)

                    wal.Save(HardState(1UL, 0UL, 0UL), ReadOnlySpan batch)

                let mutable allocated = 0L

                measured (fun () ->
                    for n in 0..9 do
                        save n

                    let before = GC.GetAllocatedBytesForCurrentThread()

                    for n in 10..59 do
                        save n

                    allocated <- GC.GetAllocatedBytesForCurrentThread() - before)
                |> ignore

                Expect.isLessThan allocated (50L * 100L) $"{allocated} bytes over 5000 entries"

            testCase "GetEntry allocates only the entry's data"
            <| fun () ->
                let _, options = memoryOptions 1000000L
                use log = RaftLog.Create("/data/wal", mem "m", options)
                log.Append([| for i in 1UL .. 1000UL -> entry i |], HardState(1UL, 0UL, 0UL))

                for i in 1UL .. 1000UL do
                    log.GetEntry i |> ignore

                let before = GC.GetAllocatedBytesForCurrentThread()

                for i in 1UL .. 1000UL do
                    log.GetEntry(1UL + (i * 7919UL) % 1000UL) |> ignore

                let perEntry = (GC.GetAllocatedBytesForCurrentThread() - before) / 1000L
                // A 100-byte array is 124 bytes with its header on 64-bit .NET.
                Expect.isLessThanOrEqual perEntry 128L $"{perEntry} bytes per GetEntry"
        ]
