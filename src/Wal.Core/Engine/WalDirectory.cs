using Wal.Format;
using Wal.Reading;
using Wal.Storage;

namespace Wal;

/// <summary>
/// What can be done to a WAL directory without opening a log in it: ask whether it holds one,
/// check it (etcd's Verify and ValidSnapshotEntries), show it record by record, and repair a
/// torn end (etcd's Repair). The reads take no lock and accept a torn last record, which a
/// writer may be in the middle of; Repair locks its segment, as it changes it.
/// </summary>
public static class WalDirectory
{
    /// <summary>Whether <paramref name="dir"/> holds a log (any *.wal file), as etcd's wal.Exist.</summary>
    /// <param name="dir">The directory.</param>
    /// <param name="options">Settings, for the file system; the real one when null.</param>
    /// <returns>True when the directory exists and holds a segment file.</returns>
    public static bool Exists(string dir, WalOptions? options = null)
    {
        var fs = (options ?? WalOptions.Default).FileSystem;
        try
        {
            dir = SegmentDirectory.FullPath(dir);
            return fs.DirectoryExists(dir) && fs.ListDirectory(dir).Any(n => n.EndsWith(Layout.SegmentExtension, StringComparison.Ordinal));
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or WalException)
        {
            return false;
        }
    }

    /// <summary>
    /// Repairs a log whose last segment ends in a torn record (what <see cref="WriteAheadLog.ReadAll"/>
    /// reports as <see cref="WalErrorKind.UnexpectedEof"/> after a crash): keeps a copy as
    /// "*.wal.broken", truncates the segment after its last valid record, and fsyncs it. As
    /// etcd's repair.go: a crash can only tear the end of the last segment, so only that segment
    /// is repaired, and only when its damage is a torn record; anything else is corruption,
    /// which repair refuses to hide.
    /// </summary>
    /// <param name="dir">The log's directory; no writer may have it open.</param>
    /// <param name="options">Settings; <see cref="WalOptions.Default"/> when null.</param>
    /// <returns>Whether anything was cut off.</returns>
    /// <exception cref="WalException">CrcMismatch or CorruptRecord when the damage is not a torn write; FileNotFound, Locked or Io.</exception>
    public static RepairOutcome Repair(string dir, WalOptions? options = null)
    {
        options ??= WalOptions.Default;
        options.Validate();
        dir = SegmentDirectory.FullPath(dir);
        try
        {
            return RepairLast(dir, options.FileSystem);
        }
        catch (Exception ex) when (ex is not WalException)
        {
            throw WalException.Io($"repairing {dir}", ex);
        }
    }

    /// <summary>
    /// Reads the log from <paramref name="snapshot"/> without changing it and checks the CRC
    /// chain, the metadata and the snapshot record (etcd's Verify). A torn last record is allowed.
    /// </summary>
    /// <param name="dir">The log's directory.</param>
    /// <param name="snapshot">The snapshot the log must hold.</param>
    /// <param name="options">Settings; <see cref="WalOptions.Default"/> when null.</param>
    /// <returns>The last hard state in the log.</returns>
    /// <exception cref="WalException">SnapshotNotFound, SnapshotMismatch, MetadataConflict, CrcMismatch, CorruptRecord, FileNotFound or Io.</exception>
    public static HardState Verify(string dir, Snapshot snapshot, WalOptions? options = null)
    {
        options ??= WalOptions.Default;
        options.Validate();
        return Wrap(dir, () => VerifyFrom(SegmentDirectory.FullPath(dir), snapshot, options.FileSystem, options.CheckRaftInvariants));
    }

    /// <summary>
    /// Reads the log from <paramref name="snapshot"/> as a read-only <see cref="WriteAheadLog.ReadAll"/>
    /// does, with the same rules and errors, but keeps none of the entries: what it finds (the
    /// metadata, the last hard state, the range of entries, where overwrites cut the log) lets
    /// <see cref="LogSurvey.Entries"/> read ReadAll's entries again one at a time. For tools that
    /// show a log of any size in bounded memory. A torn last record is allowed.
    /// </summary>
    /// <param name="dir">The log's directory.</param>
    /// <param name="snapshot">The snapshot to read from.</param>
    /// <param name="options">Settings; <see cref="WalOptions.Default"/> when null.</param>
    /// <returns>The survey; a missing snapshot record is <see cref="LogSurvey.SnapshotFound"/> false, not an error.</returns>
    /// <exception cref="WalException">SnapshotMismatch, MetadataConflict, CrcMismatch, SliceOutOfRange, CorruptRecord, RecordTooLarge, FileNotFound or Io, as ReadAll.</exception>
    public static LogSurvey Survey(string dir, Snapshot snapshot, WalOptions? options = null)
    {
        options ??= WalOptions.Default;
        options.Validate();
        return Wrap(dir, () => SurveyFrom(SegmentDirectory.FullPath(dir), snapshot, options.FileSystem, options.CheckRaftInvariants));
    }

    /// <summary>
    /// The snapshot records in the whole log that a node may start from: those at or below the
    /// last hard state's commit index (etcd's ValidSnapshotEntries).
    /// </summary>
    /// <param name="dir">The log's directory.</param>
    /// <param name="options">Settings; <see cref="WalOptions.Default"/> when null.</param>
    /// <returns>The snapshots, in log order.</returns>
    /// <exception cref="WalException">CrcMismatch, CorruptRecord, FileNotFound or Io.</exception>
    public static IReadOnlyList<Snapshot> ValidSnapshotEntries(string dir, WalOptions? options = null)
    {
        options ??= WalOptions.Default;
        options.Validate();
        return Wrap(dir, () => SnapshotsIn(SegmentDirectory.FullPath(dir), options.FileSystem));
    }

    /// <summary>
    /// Every record of the log from its first segment (whatever index it starts at), in order, with each CRC checked against
    /// the chain: what a tool needs to show a WAL record by record. Nothing is changed and no
    /// lock is taken. ReadAll's rules (snapshots, overwrites, metadata) are not applied.
    /// </summary>
    /// <param name="dir">The log's directory.</param>
    /// <param name="options">Settings; <see cref="WalOptions.Default"/> when null.</param>
    /// <returns>The records, read lazily; each record's data is a copy.</returns>
    /// <exception cref="WalException">
    /// Raised while enumerating, after the records before the damage: UnexpectedEof (a torn last
    /// record), CrcMismatch, CorruptRecord, RecordTooLarge; FileNotFound or Io.
    /// </exception>
    public static IEnumerable<WalRecord> Scan(string dir, WalOptions? options = null) => Scan(dir, Snapshot.Zero, options);

    /// <summary>
    /// As <see cref="Scan(string, WalOptions?)"/>, from the segment a reader opened at
    /// <paramref name="from"/> starts with (the last whose first index is at or below the
    /// snapshot's), so that a log whose older segments were released and removed can be shown.
    /// Only the snapshot's index chooses the segment; its record is not looked for.
    /// </summary>
    /// <param name="dir">The log's directory.</param>
    /// <param name="from">The snapshot to start at.</param>
    /// <param name="options">Settings; <see cref="WalOptions.Default"/> when null.</param>
    /// <returns>The records, read lazily; each record's data is a copy.</returns>
    /// <exception cref="WalException">As <see cref="Scan(string, WalOptions?)"/>.</exception>
    public static IEnumerable<WalRecord> Scan(string dir, Snapshot from, WalOptions? options = null)
    {
        options ??= WalOptions.Default;
        options.Validate();
        return ScanFrom(SegmentDirectory.FullPath(dir), from.Index, options.FileSystem);
    }

    private static RepairOutcome RepairLast(string dir, IFileSystem fs)
    {
        var last = SegmentDirectory.ReadSegments(fs, dir)[^1];
        string path = Path.Combine(dir, last.FileName);
        var files = SegmentDirectory.Open(fs, dir, [last], write: true);
        using var file = files[0];
        var reader = new SegmentReader(files, [last.FileName]);
        ReadStatus status;
        SegmentRecord record;
        while ((status = reader.Next(out record)) == ReadStatus.Record)
        {
        }
        switch (status)
        {
            case ReadStatus.End:
                return RepairOutcome.NothingToRepair;
            case ReadStatus.UnexpectedEof:
                try
                {
                    CopyToBroken(fs, file, path + ".broken");
                    file.Truncate(reader.Offset);
                    file.Sync();
                }
                catch (Exception ex)
                {
                    throw WalException.Io($"repairing {path}", ex);
                }
                return RepairOutcome.Repaired;
            default:
                throw ReadRules.StatusError(status, reader, record);
        }
    }

    private static void CopyToBroken(IFileSystem fs, IStorageFile source, string brokenPath)
    {
        using var broken = fs.OpenFile(brokenPath, OpenMode.CreateTruncate);
        var buffer = new byte[1 << 20];
        long offset = 0;
        int n;
        while ((n = source.Read(offset, buffer)) > 0)
        {
            broken.Write(offset, buffer.AsSpan(0, n));
            offset += n;
        }
        broken.Sync();
    }

    private static HardState VerifyFrom(string dir, Snapshot snapshot, IFileSystem fs, bool strict)
    {
        var chosen = SegmentDirectory.SelectFrom(SegmentDirectory.ReadSegments(fs, dir), snapshot.Index, dir);
        var files = SegmentDirectory.Open(fs, dir, chosen, write: false);
        try
        {
            string[] names = [.. chosen.Select(s => s.FileName)];
            var reader = new SegmentReader(files, names);
            // etcd's Verify leaves entries undecoded; raft's invariants need their coordinates.
            var replay = new Replay(snapshot, RaftInvariants.After(names), strict, Replay.EntryRule.Check);
            ReadStatus status;
            SegmentRecord record;
            while ((status = reader.Next(out record)) == ReadStatus.Record)
                replay.Apply(record, out _, out _, out _);
            if (status is not (ReadStatus.End or ReadStatus.UnexpectedEof))
                throw ReadRules.StatusError(status, reader, record);
            if (!replay.SnapshotFound)
                throw new WalException(WalErrorKind.SnapshotNotFound, replay.SnapshotNotFoundMessage);
            return replay.State;
        }
        finally
        {
            foreach (var f in files)
                f.Dispose();
        }
    }

    // ReadAll's replay with the entries list replaced by the log's last index and the overwrite
    // cuts: the same rules (Replay) give the same errors.
    private static LogSurvey SurveyFrom(string dir, Snapshot start, IFileSystem fs, bool strict)
    {
        var chosen = SegmentDirectory.SelectFrom(SegmentDirectory.ReadSegments(fs, dir), start.Index, dir);
        var files = SegmentDirectory.Open(fs, dir, chosen, write: false);
        try
        {
            string[] names = [.. chosen.Select(s => s.FileName)];
            var reader = new SegmentReader(files, names);
            var replay = new Replay(start, RaftInvariants.After(names), strict, Replay.EntryRule.Place);
            var cuts = new OverwriteCuts();
            long records = 0;
            ReadStatus status;
            SegmentRecord record;
            while ((status = reader.Next(out record)) == ReadStatus.Record)
            {
                ulong before = replay.Count;
                if (replay.Apply(record, out var entry, out _, out ulong position) && position < before)
                    cuts.Add(records, entry.Index);
                records++;
            }
            if (status is not (ReadStatus.End or ReadStatus.UnexpectedEof))
                throw ReadRules.StatusError(status, reader, record);
            // Stryker disable once NullCoalescing : null converts to an empty ReadOnlyMemory all the same
            return new LogSurvey(dir, fs, chosen, start, replay.Metadata ?? [], replay.State, start.Index + replay.Count, replay.SnapshotFound, records, cuts);
        }
        finally
        {
            foreach (var f in files)
                f.Dispose();
        }
    }

    private static List<Snapshot> SnapshotsIn(string dir, IFileSystem fs)
    {
        var segments = SegmentDirectory.ReadSegments(fs, dir);
        var files = SegmentDirectory.Open(fs, dir, segments, write: false);
        try
        {
            var reader = new SegmentReader(files, [.. segments.Select(s => s.FileName)]);
            var snapshots = new List<Snapshot>();
            var state = HardState.Empty;
            ReadStatus status;
            SegmentRecord record;
            while ((status = reader.Next(out record)) == ReadStatus.Record)
            {
                if (record.Type == RecordType.Snapshot)
                    snapshots.Add(ReadRules.DecodeSnapshot(record));
                else if (record.Type == RecordType.State)
                    state = ReadRules.DecodeState(record);
            }
            if (status is not (ReadStatus.End or ReadStatus.UnexpectedEof))
                throw ReadRules.StatusError(status, reader, record);
            // A snapshot past the commit index may never have been applied; it is no place to start.
            return snapshots.Where(s => s.Index <= state.Commit).ToList();
        }
        finally
        {
            foreach (var f in files)
                f.Dispose();
        }
    }

    private static IEnumerable<WalRecord> ScanFrom(string dir, ulong index, IFileSystem fs)
    {
        // From the segment a reader opened at the index starts with, or from the first segment
        // there is when it starts above the index: after old segments were removed (a
        // compaction, etcd's purge) the first no longer starts at index 0. The run must still
        // have no gap.
        var segments = SegmentDirectory.ReadSegments(fs, dir);
        var chosen = SegmentDirectory.SelectFrom(segments, Math.Max(index, segments[0].Name.Index), dir);
        var files = SegmentDirectory.Open(fs, dir, chosen, write: false);
        try
        {
            var reader = new SegmentReader(files, [.. chosen.Select(s => s.FileName)]);
            while (TryScanNext(reader, dir, out var record))
                yield return record;
        }
        finally
        {
            foreach (var f in files)
                f.Dispose();
        }
    }

    /// <summary>The next record as a copy a caller may keep; false at a clean end. A torn tail is reported too: a dump shows what is there, and where it stops.</summary>
    private static bool TryScanNext(SegmentReader reader, string dir, out WalRecord next)
    {
        ReadStatus status;
        SegmentRecord record;
        try
        {
            status = reader.Next(out record);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw WalException.Io($"reading {reader.CurrentSegment} in {dir}", ex);
        }
        next = default;
        if (status == ReadStatus.End)
            return false;
        if (status != ReadStatus.Record)
            throw ReadRules.StatusError(status, reader, record);
        next = new WalRecord(record.Segment, record.Offset, record.FrameBytes, record.Type, record.Crc, record.Data.ToArray());
        return true;
    }

    /// <summary>Runs a read-only query, reporting a failure the reading did not already type (a read error, a file gone) as Io.</summary>
    private static T Wrap<T>(string dir, Func<T> read)
    {
        try
        {
            return read();
        }
        catch (Exception ex) when (ex is not WalException)
        {
            throw WalException.Io($"reading {dir}", ex);
        }
    }
}
