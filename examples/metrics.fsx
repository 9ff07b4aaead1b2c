// Metrics: the log publishes its fdatasync durations (etcd's wal_fsync_duration_seconds), bytes
// written, bytes of space zeroed ahead of the records, entries and records appended, segments cut
// and cut durations on the meter "Wal".
// Here a MeterListener in the script collects them; `dotnet-counters monitor --counters Wal -p <pid>`
// shows the same instruments in a running service.
// Run with: dotnet fsi build.fsx pack && dotnet fsi examples/metrics.fsx
#r "nuget: Wal.Core"

open System
open System.Collections.Generic
open System.Diagnostics.Metrics
open System.IO
open Wal

let totals = Dictionary<string, float>()
let counts = Dictionary<string, int>()
let units = Dictionary<string, string>()

let record (instrument: Instrument) (value: float) =
    lock totals (fun () ->
        totals[instrument.Name] <-
            (match totals.TryGetValue instrument.Name with
             | true, t -> t
             | _ -> 0.0)
            + value

        counts[instrument.Name] <-
            (match counts.TryGetValue instrument.Name with
             | true, c -> c
             | _ -> 0)
            + 1

        units[instrument.Name] <- instrument.Unit)

let listener = new MeterListener()

listener.InstrumentPublished <-
    fun instrument l ->
        if instrument.Meter.Name = WalMetrics.MeterName then
            l.EnableMeasurementEvents instrument

listener.SetMeasurementEventCallback<int64>(fun instrument value _ _ -> record instrument (float value))
listener.SetMeasurementEventCallback<float>(fun instrument value _ _ -> record instrument value)
listener.Start()

// 500 saves of 10 entries of 200 bytes, each synced, in 256 KB segments so that a few are cut.
let dir = Path.Combine(Path.GetTempPath(), $"wal-metrics-{Guid.NewGuid():N}")

do
    use log =
        RaftLog.Create(dir, ReadOnlyMemory "node-1"B, WalOptions(SegmentSizeBytes = 256_000L))

    let payload = ReadOnlyMemory(Array.create 200 42uy)

    for save in 0..499 do
        let first = uint64 (save * 10 + 1)
        log.Append([| for i in first .. first + 9UL -> Entry(1UL, i, payload) |], HardState(1UL, 1UL, first - 1UL))

listener.Dispose()

printfn "%-24s %8s %14s %12s" "instrument" "records" "total" "mean"

for name in totals.Keys |> Seq.sort do
    let total, count = totals[name], counts[name]

    if units[name] = "s" then
        printfn "%-24s %8d %12.3f s %9.1f us" name count total (total / float count * 1e6)
    else
        printfn "%-24s %8d %14.0f %12s" name count total units[name]

// What the run must show: 5,000 entries, an fdatasync per save, some cuts.
let check (name: string) (ok: float -> bool) =
    match totals.TryGetValue name with
    | true, v when ok v -> ()
    | _ -> failwithf "unexpected %s" name

check WalMetrics.EntriesAppended (fun v -> v = 5000.0)
check WalMetrics.SegmentsCut (fun v -> v >= 3.0)
check WalMetrics.BytesWritten (fun v -> v > 1_000_000.0)
// Saves of about 2.3 KB take zeros along ahead of them (WalOptions.ZeroAheadBytes), about as many bytes as they write.
check WalMetrics.BytesZeroed (fun v -> v > 500_000.0)

if counts[WalMetrics.FsyncDuration] < 500 then
    failwith "an fdatasync per save"

Directory.Delete(dir, true)
