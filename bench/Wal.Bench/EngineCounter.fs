/// One of the engine's counters (WalMetrics), added up through a MeterListener while it is
/// alive: the bytes the engine wrote, or the segments it cut.
namespace Wal.Bench

open System
open System.Diagnostics.Metrics
open Wal

/// Adds up the engine's counter `name` (a WalMetrics constant) from now until disposed.
type EngineCounter(name: string) =
    let mutable total = 0L
    let listener = new MeterListener()

    do
        listener.InstrumentPublished <-
            fun instrument l ->
                if instrument.Meter.Name = WalMetrics.MeterName && instrument.Name = name then
                    l.EnableMeasurementEvents instrument

        listener.SetMeasurementEventCallback<int64>(fun _ value _ _ -> total <- total + value)
        listener.Start()

    /// The sum of what the counter added since this was made.
    member _.Total = total

    interface IDisposable with
        member _.Dispose() = listener.Dispose()
