using System.Runtime.CompilerServices;
using Wal.Format;
using Wal.Reading;

namespace Wal.Log;

/// <summary>
/// One segment as the split scan's second half reads it (<see cref="SplitScan"/>), before it
/// knows what the segments before it hold: every entry's place and term in a run of its own,
/// checked only as far as the segment itself tells. A segment is taken in two parts:
/// <list type="bullet">
/// <item>its head, the records before its first entry (a cut writes the Crc, metadata and
/// hard state records there), kept whole, for the index to apply one by one;</item>
/// <item>its body, from its first entry on: entries that each follow the one before, with a
/// term not below it and one of raft's types; hard states, each checked against the one
/// before it in the segment as raft's invariants check it (the last one kept); and snapshot
/// records at or below the last entry, kept whole with their place.</item>
/// </list>
/// Anything else in a body (an overwrite, a gap, a Crc or metadata record, an unknown type, a
/// record that does not decode) is more than a segment can answer alone: the scan gives up,
/// and the log is read again one record at a time.
/// </summary>
internal sealed class SegmentScan
{
    private ulong _lastTerm;
    // The last hard state read in the segment, against which the next is checked.
    private HardState? _state;

    private SegmentScan(LogSegment segment, string name)
    {
        Segment = segment;
        Name = name;
    }

    /// <summary>The segment.</summary>
    public LogSegment Segment { get; }

    /// <summary>Its file name, as the reader names its records.</summary>
    public string Name { get; }

    /// <summary>The records before the first entry.</summary>
    public List<KeptRecord> Head { get; } = [];

    /// <summary>The body's snapshot records (and a hard state no earlier one in the segment vouches for), each after <c>At</c> of the run's entries.</summary>
    public List<(int At, KeptRecord Record)> Body { get; } = [];

    /// <summary>Every entry of the segment, from the first (null when it holds none).</summary>
    public TailRun? Run { get; private set; }

    /// <summary>The first entry's term.</summary>
    public ulong FirstTerm { get; private set; }

    /// <summary>The first entry's type, which nothing here checks.</summary>
    public EntryType FirstType { get; private set; }

    /// <summary>Where the first entry's frame starts.</summary>
    public long FirstOffset { get; private set; }

    /// <summary>The first entry's frame length.</summary>
    public int FirstFrameBytes { get; private set; }

    /// <summary>Where the last entry's frame ends.</summary>
    public long LastEntryEnd { get; private set; }

    /// <summary>The segment's last hard state, when it is a body's, checked against the one before it; null when the last hard state is in <see cref="Head"/> or <see cref="Body"/>, or there is none.</summary>
    public HardState? LastState { get; private set; }

    /// <summary>
    /// Reads <paramref name="reader"/> (the segments of <paramref name="segments"/>, from their
    /// first) to a clean end, a <see cref="SegmentScan"/> for each segment that holds a record;
    /// null when a record is more than its segment can answer, or the reader fails.
    /// </summary>
    /// <param name="reader">A reader of the segments that checks the CRC.</param>
    /// <param name="segments">The segments.</param>
    /// <param name="start">The snapshot the log is read from: a run must start after it.</param>
    /// <param name="stop">Cancelled when the scan is no longer wanted; looked at once a segment.</param>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static List<SegmentScan>? ReadAll(SegmentReader reader, IReadOnlyList<LogSegment> segments, Snapshot start, CancellationToken stop)
    {
        var scans = new List<SegmentScan>();
        SegmentScan? scan = null;
        int current = 0;
        int perSegment = 0;
        ReadStatus status;
        while ((status = reader.Next(out var record)) == ReadStatus.Record)
        {
            if (scan is null || !ReferenceEquals(record.Segment, scan.Name))
            {
                if (stop.IsCancellationRequested)
                    return null;
                while (current < segments.Count && segments[current].FileName != record.Segment)
                    current++;
                if (current == segments.Count)
                    return null;
                perSegment = Math.Max(perSegment, scan?.Run?.Count ?? 0);
                scan = new SegmentScan(segments[current], record.Segment);
                scans.Add(scan);
            }
            bool taken = record.Type == RecordType.Entry ? scan.TakeEntry(record, start, perSegment) : scan.TakeOther(record);
            if (!taken)
                return null;
        }
        return status == ReadStatus.End ? scans : null;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool TakeEntry(in SegmentRecord record, Snapshot start, int perSegment)
    {
        if (!RecordCodec.TryParseEntry(record.Data, out ulong term, out ulong index, out var type, out _))
            return false;
        var run = Run;
        if (run is null)
        {
            if (index <= start.Index)
                return false;
            run = Run = new TailRun(Segment, index);
            run.Reserve(perSegment);
            FirstTerm = term;
            FirstType = type;
            FirstOffset = record.Offset;
            FirstFrameBytes = record.FrameBytes;
        }
        // What a replay takes from an entry that follows the last one with a term not below it:
        // the last index and, on a new term, a term run. Nothing before the segment decides it.
        else if (index != run.Last + 1 || index == 0 || term < _lastTerm || (ulong)type > 2)
        {
            return false;
        }
        run.Append(record.Offset, term);
        _lastTerm = term;
        LastEntryEnd = record.End;
        return true;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private bool TakeOther(in SegmentRecord record)
    {
        if (Run is not { } run)
        {
            Head.Add(new KeptRecord(record));
            if (record.Type == RecordType.State && RecordCodec.TryDecodeHardState(record.Data, out var head))
                _state = head;
            return true;
        }
        switch (record.Type)
        {
            case RecordType.State:
                if (!RecordCodec.TryDecodeHardState(record.Data, out var state))
                    return false;
                if (_state is not { } before)
                {
                    // Nothing in the segment vouches for it: the index checks it in its place.
                    Body.Add((run.Count, new KeptRecord(record)));
                    LastState = null;
                }
                else if (RaftInvariants.StateViolation(before, state, run.Last) is null)
                {
                    LastState = state;
                }
                else
                {
                    return false;
                }
                _state = state;
                return true;
            case RecordType.Snapshot:
                // One at or below the last entry changes nothing the body's entries rely on. (The
                // index would refuse the entries after one past it too; this stops early.)
                if (!RecordCodec.TryDecodeSnapshot(record.Data, out var snapshot) || snapshot.Index > run.Last)
                    return false;
                Body.Add((run.Count, new KeptRecord(record)));
                return true;
            default:
                return false;
        }
    }
}

/// <summary>A record kept whole, to be applied after its reader moved on.</summary>
internal sealed class KeptRecord(in SegmentRecord record)
{
    private readonly RecordType _type = record.Type;
    private readonly uint _crc = record.Crc;
    private readonly byte[] _data = record.Data.ToArray();
    private readonly long _offset = record.Offset;
    private readonly int _frameBytes = record.FrameBytes;

    /// <summary>The record again, in segment <paramref name="segment"/>.</summary>
    public SegmentRecord AsRecord(string segment) => new(_type, _crc, _data, segment, _offset, _frameBytes);

    /// <summary>The record's type.</summary>
    public RecordType Type => _type;

    /// <summary>The record's crc field.</summary>
    public uint Crc => _crc;
}
