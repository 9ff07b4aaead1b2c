using System.Runtime.CompilerServices;
using Wal.Engine;
using Wal.Reading;

namespace Wal;

public sealed partial class WriteAheadLog
{
    /// <summary>
    /// Reads the log from the snapshot it was opened at, with etcd's rules: entries at or below
    /// the snapshot are skipped; an entry whose index is already present replaces that entry
    /// and all after it; the last hard state wins. In write mode the log must read to its end,
    /// and whatever follows the last valid record is zeroed so new records never sit before
    /// stale ones; the log then appends. Can be called once.
    /// </summary>
    /// <returns>The metadata, the last hard state and the entries after the snapshot.</returns>
    /// <exception cref="WalException">
    /// SnapshotNotFound (with <see cref="WalException.Contents"/> set, and the log still ready to
    /// append), SnapshotMismatch, MetadataConflict, CrcMismatch, SliceOutOfRange, CorruptRecord,
    /// UnexpectedEof (write mode: a torn last record, which <see cref="WalDirectory.Repair"/> cuts off), Io,
    /// InvalidState or Closed.
    /// </exception>
    public ReadAllResult ReadAll()
    {
        lock (_gate)
        {
            if (_closed)
                throw new WalException(WalErrorKind.Closed, "The WAL is closed.");
            if (_pending is null || _readFailed)
                throw WalException.InvalidState("ReadAll can be called once, right after Open or OpenForRead.");
            try
            {
                return Replay(_pending);
            }
            catch (WalException ex) when (ex.Kind != WalErrorKind.SnapshotNotFound)
            {
                _readFailed = true;
                throw;
            }
            catch (Exception ex) when (ex is not WalException)
            {
                _readFailed = true;
                throw WalException.Io($"reading the WAL in {Directory}", ex);
            }
        }
    }

    // Recovery runs once, at start: its loop and the methods it calls per record are compiled
    // optimized at once, where tiering would run a whole scan in unoptimized code (2-3x slower).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private ReadAllResult Replay(PendingRead pending)
    {
        var reader = pending.Reader;
        var replay = new Reading.Replay(pending.Start, pending.Invariants, _options.CheckRaftInvariants, Reading.Replay.EntryRule.Place);
        // Every segment but the last is sealed: its length is its data. The last is preallocated.
        long scanBytes = 0, sealedBytes = 0;
        foreach (var segment in pending.Segments)
        {
            sealedBytes = scanBytes;
            scanBytes += segment.File.Length;
        }
        var entries = new EntryStore(pending.Start.Index, ChunkFeed.For(EntryStore.ChunkBytes, sealedBytes, scanBytes));
        ReadStatus status;
        SegmentRecord record;
        try
        {
            while ((status = reader.Next(out record)) == ReadStatus.Record)
            {
                if (replay.Apply(record, out var entry, out var data, out ulong position))
                    entries.Place((int)position, entry.Term, entry.Type, data);
            }
        }
        finally
        {
            entries.EndFeed();
        }
        _lastIndex = replay.LastIndex;

        // A reader may stop at a torn last record: the writer may be in the middle of it.
        if (status != ReadStatus.End && (pending.Write || status != ReadStatus.UnexpectedEof))
            throw ReadRules.StatusError(status, reader, record);
        // The mapping goes before the tail's file is cut or changes hands.
        reader.Dispose();

        // Stryker disable once NullCoalescing : null metadata reads and is written as empty (ReadOnlyMemory and span conversions)
        byte[] kept = replay.Metadata ?? [];
        if (pending.Write)
        {
            var segments = pending.Segments;
            _writer = SegmentWriter.Resume(segments[^1], reader.Offset, reader.Crc, kept, replay.State, _lastIndex, _options.ZeroFillSegments, ZeroAheadHere);
            // The tail is the writer's now; the segments before it stay open for their locks.
            segments.RemoveAt(segments.Count - 1);
            _locked.AddRange(segments);
            // Stryker disable once Statement : the pending read is dropped just below; clearing only says the files changed hands
            segments.Clear();
        }
        else
        {
            pending.Dispose();
        }
        _pending = null;
        _invariants = replay.Invariants;

        var result = new ReadAllResult(kept, replay.State, entries);
        if (!replay.SnapshotFound)
            throw new WalException(WalErrorKind.SnapshotNotFound, replay.SnapshotNotFoundMessage) { Contents = result };
        return result;
    }
}
