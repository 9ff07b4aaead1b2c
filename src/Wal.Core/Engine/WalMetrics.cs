using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Wal;

/// <summary>
/// The log's metrics, published through System.Diagnostics.Metrics on the meter named
/// <see cref="MeterName"/>, so <c>dotnet-counters monitor --counters Wal</c>, OpenTelemetry or a
/// <see cref="MeterListener"/> can watch them. Every log in the process reports to the same
/// instruments, without tags, so that recording stays free of allocations on the write path.
/// </summary>
public static class WalMetrics
{
    /// <summary>The meter's name: "Wal".</summary>
    public const string MeterName = "Wal";

    /// <summary>Histogram, seconds: how long each fdatasync of a segment took (etcd's wal_fsync_duration_seconds).</summary>
    public const string FsyncDuration = "wal.fsync.duration";

    /// <summary>Counter, bytes: the records the log wrote to its segment files (zeros ahead of them are <see cref="BytesZeroed"/>).</summary>
    public const string BytesWritten = "wal.bytes.written";

    /// <summary>
    /// Counter, bytes: preallocated space the log wrote with zeros, apart from its records
    /// (<see cref="WalOptions.ZeroAheadBytes"/>, <see cref="WalOptions.ZeroFillSegments"/>).
    /// </summary>
    public const string BytesZeroed = "wal.bytes.zeroed";

    /// <summary>Counter: raft entries appended.</summary>
    public const string EntriesAppended = "wal.entries.appended";

    /// <summary>Counter: records appended, of every type (entries, hard states, snapshots, and the Crc and metadata records that open a segment).</summary>
    public const string RecordsAppended = "wal.records.appended";

    /// <summary>Counter: segments cut (a new segment started because the tail passed the segment size).</summary>
    public const string SegmentsCut = "wal.segments.cut";

    /// <summary>Histogram, seconds: how long each cut took, from sealing the old tail to the synced rename of the new one.</summary>
    public const string CutDuration = "wal.cut.duration";

    private static readonly Meter Meter = new(MeterName, "1.0");
    private static readonly Histogram<double> Fsync = Meter.CreateHistogram<double>(FsyncDuration, "s", "Duration of each fdatasync of a WAL segment.");
    private static readonly Counter<long> Bytes = Meter.CreateCounter<long>(BytesWritten, "By", "Bytes written to WAL segment files.");
    private static readonly Counter<long> Zeroed = Meter.CreateCounter<long>(BytesZeroed, "By", "Bytes of WAL segment space written with zeros ahead of the records.");
    private static readonly Counter<long> Entries = Meter.CreateCounter<long>(EntriesAppended, "{entry}", "Raft entries appended to the WAL.");
    private static readonly Counter<long> Records = Meter.CreateCounter<long>(RecordsAppended, "{record}", "Records appended to the WAL.");
    private static readonly Counter<long> Cuts = Meter.CreateCounter<long>(SegmentsCut, "{segment}", "WAL segments cut.");
    private static readonly Histogram<double> Cut = Meter.CreateHistogram<double>(CutDuration, "s", "Duration of each WAL segment cut.");

    /// <summary>A timestamp to measure a duration from.</summary>
    internal static long Start() => Stopwatch.GetTimestamp();

    internal static void Synced(long started)
    {
        if (Fsync.Enabled)
            Fsync.Record(Stopwatch.GetElapsedTime(started).TotalSeconds);
    }

    internal static void Written(long bytes) => Bytes.Add(bytes);

    internal static void ZeroesWritten(long bytes) => Zeroed.Add(bytes);

    internal static void Appended(int entries, int records)
    {
        if (entries > 0)
            Entries.Add(entries);
        Records.Add(records);
    }

    internal static void CutDone(long started)
    {
        Cuts.Add(1);
        if (Cut.Enabled)
            Cut.Record(Stopwatch.GetElapsedTime(started).TotalSeconds);
    }
}
