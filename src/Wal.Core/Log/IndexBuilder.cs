using System.Runtime.CompilerServices;
using Wal.Format;
using Wal.Reading;

namespace Wal.Log;

/// <summary>
/// The index an opening scan builds, in log order, with ReadAll's rules (<see cref="Replay"/>):
/// entries at or below the snapshot are skipped; an entry whose index is present replaces it
/// and everything after it; an index past the end is SliceOutOfRange. Records come one at a
/// time from a reader (<see cref="Read"/>), or a segment at a time as the split scan's second
/// half found them (<see cref="TryApply"/>); either way the index, the errors and what raft's
/// invariants learn are those of one reader replaying every record.
/// </summary>
internal sealed class IndexBuilder
{
    private readonly Replay _replay;
    private readonly IReadOnlyList<LogSegment> _segments;
    private readonly List<TailRun> _runs = [];
    private int _current;
    private LogSegment _segment;
    private string _segmentName;
    private TailRun? _run;
    // Segments are cut at one size, so a segment holds about as many entries as the one before.
    private int _perSegment;

    /// <summary>A builder for <paramref name="segments"/>, the segments the records come from, in order.</summary>
    public IndexBuilder(IReadOnlyList<LogSegment> segments, Snapshot start, bool strict)
    {
        _segments = segments;
        _replay = new Replay(start, RaftInvariants.After([.. segments.Select(s => s.FileName)]), strict, Replay.EntryRule.Place);
        _segment = segments[0];
        _segmentName = _segment.FileName;
    }

    /// <summary>
    /// Applies every record of <paramref name="reader"/> to a clean end.
    /// </summary>
    /// <exception cref="WalException">As ReadAll in write mode.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="stop"/> was cancelled.</exception>
    // Compiled optimized at once, as ReadAll's loop (WriteAheadLog.Replay): an open runs it once.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void Read(SegmentReader reader, CancellationToken stop = default)
    {
        ReadStatus status;
        SegmentRecord record;
        int records = 0;
        while ((status = reader.Next(out record)) == ReadStatus.Record)
        {
            Apply(record);
            if ((++records & 0xFFF) == 0)
                stop.ThrowIfCancellationRequested();
        }
        if (status != ReadStatus.End)
            throw ReadRules.StatusError(status, reader, record);
    }

    /// <summary>Applies one record.</summary>
    /// <exception cref="WalException">As ReadAll in write mode.</exception>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Apply(in SegmentRecord record)
    {
        ulong before = _replay.Count;
        if (_replay.Apply(record, out var entry, out _, out ulong position))
            Place(record, entry.Index, entry.Term, before, position, null);
    }

    /// <summary>
    /// Applies a segment the split scan read (see <see cref="SegmentScan"/>): its records before
    /// the first entry and its body's snapshot records one by one, its first entry as a record
    /// of its own, and the rest of its entries and hard states at once, which the scan found
    /// such that one by one they would change nothing but the last index, the terms and the hard
    /// state. Answers false, leaving the builder spent, when the log before the segment ended
    /// otherwise than the scan could take for granted (a snapshot record past the last entry,
    /// say): the caller then reads the log again, one record at a time.
    /// </summary>
    /// <exception cref="WalException">As ReadAll in write mode, for the records applied one by one.</exception>
    public bool TryApply(SegmentScan scan)
    {
        foreach (var record in scan.Head)
            Apply(record.AsRecord(scan.Name));
        if (scan.Run is not { } run)
            return true;
        ulong before = _replay.Count;
        var first = new SegmentRecord(RecordType.Entry, 0, default, scan.Name, scan.FirstOffset, scan.FirstFrameBytes);
        if (!_replay.ApplyEntry(first, scan.FirstTerm, run.First, scan.FirstType, out ulong position))
            return false;
        // The segment's entries are in the run already; it becomes the index's run for the segment.
        Place(first, run.First, scan.FirstTerm, before, position, run);
        _segment.Extend(scan.LastEntryEnd);

        int done = 1;
        foreach (var (at, record) in scan.Body)
        {
            if (!_replay.TryPlaceRun(run.First + (ulong)done, at - done, run.TermsOver(run.First + (ulong)done, at - done)))
                return false;
            done = at;
            Apply(record.AsRecord(scan.Name));
        }
        if (!_replay.TryPlaceRun(run.First + (ulong)done, run.Count - done, run.TermsOver(run.First + (ulong)done, run.Count - done)))
            return false;
        if (scan.LastState is { } state)
            _replay.TakeCheckedState(state);
        return true;
    }

    /// <summary>What the records applied so far give.</summary>
    /// <exception cref="WalException">SnapshotNotFound, without contents.</exception>
    public IndexScan.Found Finish()
    {
        if (!_replay.SnapshotFound)
            throw new WalException(WalErrorKind.SnapshotNotFound, _replay.SnapshotNotFoundMessage);
        return new IndexScan.Found([.. _runs.Select(r => r.Run.Trimmed())], _replay.Metadata ?? [], _replay.State, _replay.LastIndex,
            _replay.Invariants);
    }

    /// <summary>
    /// Places an entry the replay took at <paramref name="position"/> after the snapshot: drops
    /// what it replaces, and adds it to its segment's run (<paramref name="adopt"/>, already
    /// holding it, becomes that run).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Place(in SegmentRecord record, ulong index, ulong term, ulong before, ulong position, TailRun? adopt)
    {
        if (position < before)
        {
            Truncate(index);
            _run = _runs.Count > 0 ? _runs[^1] : null;
        }
        if (!ReferenceEquals(record.Segment, _segmentName))
        {
            while (_segments[_current].FileName != record.Segment)
                _current++;
            _segment = _segments[_current];
            _segmentName = record.Segment;
        }
        if (adopt is not null)
        {
            _run = adopt;
            _runs.Add(adopt);
            return;
        }
        if (_run is null || _run.Segment != _segment)
        {
            _perSegment = Math.Max(_perSegment, _run?.Count ?? 0);
            _run = new TailRun(_segment, index);
            _run.Reserve(_perSegment);
            _runs.Add(_run);
        }
        // The frame is in the file; readers may touch it through a mapping.
        _segment.Extend(record.End);
        _run.Append(record.Offset, term);
    }

    /// <summary>Drops the entries from <paramref name="index"/> on.</summary>
    private void Truncate(ulong index)
    {
        while (_runs.Count > 0 && _runs[^1].First >= index)
            _runs.RemoveAt(_runs.Count - 1);
        if (_runs.Count > 0 && _runs[^1].Last >= index)
            _runs[^1].Shrink((int)(index - _runs[^1].First));
    }
}
