using Wal.Reading;
using Wal.Storage;

namespace Wal;

/// <summary>
/// What <see cref="WriteAheadLog.ReadAll"/> would return at a snapshot, found by
/// <see cref="WalDirectory.Survey"/> in one read that keeps none of the entries: the metadata,
/// the last hard state, the range of entries, and where raft's overwrites cut the log, so that
/// <see cref="Entries"/> can read ReadAll's entries again one at a time. Memory stays bounded
/// by the number of segments and overwrites, whatever the log's size: a tool can show a log of
/// any length as ReadAll sees it.
/// </summary>
public sealed class LogSurvey
{
    private readonly string _dir;
    private readonly IFileSystem _fs;
    private readonly List<SegmentFile> _segments;
    private readonly OverwriteCuts _cuts;

    internal LogSurvey(string dir, IFileSystem fs, List<SegmentFile> segments, Snapshot start, ReadOnlyMemory<byte> metadata,
        HardState state, ulong lastIndex, bool snapshotFound, long records, OverwriteCuts cuts)
    {
        _dir = dir;
        _fs = fs;
        _segments = segments;
        _cuts = cuts;
        Start = start;
        Metadata = metadata;
        State = state;
        LastIndex = lastIndex;
        SnapshotFound = snapshotFound;
        Records = records;
    }

    /// <summary>The snapshot the log was read from.</summary>
    public Snapshot Start { get; }

    /// <summary>The metadata, as ReadAll returns it (empty when the log holds none).</summary>
    public ReadOnlyMemory<byte> Metadata { get; }

    /// <summary>The last hard state saved.</summary>
    public HardState State { get; }

    /// <summary>The index of the last entry ReadAll returns, or the snapshot's index when it returns none.</summary>
    public ulong LastIndex { get; }

    /// <summary>How many entries ReadAll returns: those from the snapshot's index plus one to <see cref="LastIndex"/>.</summary>
    public ulong EntryCount => LastIndex - Start.Index;

    /// <summary>
    /// Whether the log holds the snapshot's record. When it does not, ReadAll fails with
    /// <see cref="WalErrorKind.SnapshotNotFound"/> and returns these contents beside the error.
    /// </summary>
    public bool SnapshotFound { get; }

    /// <summary>How many records were read, the torn last one (if any) not counted.</summary>
    public long Records { get; }

    /// <summary>How many overwrite cuts the survey holds (at most the number of overwrites in the log).</summary>
    public int Cuts => _cuts.Count;

    /// <summary>
    /// ReadAll's entries in index order, read again from the segments one at a time: each
    /// entry record that no later overwrite replaced. Only the records the survey read are
    /// read again, so records a writer appended since are left out. Each entry's data is a copy
    /// the caller may keep.
    /// </summary>
    /// <returns>The entries, read lazily; enumerate once per call.</returns>
    /// <exception cref="WalException">
    /// Raised while enumerating: Io or FileNotFound when a segment cannot be read again, and
    /// CorruptRecord when the records changed since the survey.
    /// </exception>
    public IEnumerable<Entry> Entries()
    {
        var files = SegmentDirectory.Open(_fs, _dir, _segments, write: false);
        try
        {
            var reader = new SegmentReader(files, [.. _segments.Select(s => s.FileName)]);
            int cut = 0;
            for (long position = 0; position < Records; position++)
            {
                if (NextSurvivor(reader, position, ref cut, out var entry))
                    yield return entry;
            }
        }
        finally
        {
            foreach (var f in files)
                f.Dispose();
        }
    }

    /// <summary>
    /// As <see cref="Entries"/>, without a copy or an allocation per entry: each entry ReadAll
    /// returns is handed to <paramref name="visit"/> in index order, its payload a span of the
    /// read buffer valid only during the call. For tools that write a log of any size out. The
    /// records' CRCs, which the survey checked, are not computed again (a WAL's records are
    /// appended, never rewritten in place); frames and records are parsed again, and a record
    /// that is no longer there is reported.
    /// </summary>
    /// <param name="visit">Called once per entry.</param>
    /// <exception cref="WalException">
    /// Io or FileNotFound when a segment cannot be read again, and CorruptRecord when the
    /// records changed since the survey; the entries before it have been visited.
    /// </exception>
    public void VisitEntries(EntryVisitor visit)
    {
        ArgumentNullException.ThrowIfNull(visit);
        var files = SegmentDirectory.Open(_fs, _dir, _segments, write: false);
        try
        {
            // The survey checked these records' CRCs: a WAL's records are appended, never
            // rewritten in place, so the second read parses them without computing them again.
            var reader = new SegmentReader(files, [.. _segments.Select(s => s.FileName)], checkCrc: false);
            int cut = 0;
            for (long position = 0; position < Records; position++)
            {
                var record = NextRecord(reader, position);
                if (record.Type != RecordType.Entry)
                    continue;
                if (!Format.RecordCodec.TryParseEntry(record.Data, out ulong term, out ulong index, out var type, out var data))
                    throw ReadRules.Corrupt(record, "an entry record's data is not a raftpb.Entry");
                if (index > Start.Index && _cuts.Survives(position, index, ref cut))
                    visit(term, index, type, data);
            }
        }
        finally
        {
            foreach (var f in files)
                f.Dispose();
        }
    }

    /// <summary>Reads the record at <paramref name="position"/>: true with its entry when it is one ReadAll returns.</summary>
    private bool NextSurvivor(SegmentReader reader, long position, ref int cut, out Entry entry)
    {
        entry = default;
        var record = NextRecord(reader, position);
        if (record.Type != RecordType.Entry)
            return false;
        if (!Format.RecordCodec.TryParseEntry(record.Data, out ulong term, out ulong index, out var type, out var data))
            throw ReadRules.Corrupt(record, "an entry record's data is not a raftpb.Entry");
        if (index <= Start.Index || !_cuts.Survives(position, index, ref cut))
            return false;
        entry = new Entry(term, index, type, data.IsEmpty ? ReadOnlyMemory<byte>.Empty : data.ToArray());
        return true;
    }

    /// <summary>The record at <paramref name="position"/>, which the survey read: an error when it is no longer there.</summary>
    private SegmentRecord NextRecord(SegmentReader reader, long position)
    {
        ReadStatus status;
        SegmentRecord record;
        try
        {
            status = reader.Next(out record);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw WalException.Io($"reading {reader.CurrentSegment} in {_dir}", ex);
        }
        if (status != ReadStatus.Record)
            throw new WalException(WalErrorKind.CorruptRecord,
                $"{reader.CurrentSegment} in {_dir} changed while it was read: record {position} is no longer there ({status}).");
        return record;
    }
}
