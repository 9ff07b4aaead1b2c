using Wal.Format;
using Wal.Log;

namespace Wal;

// The reading side of RaftLog: every read answers from one published view (LogView), so it
// never waits for the writer, and retries from a newer view when a compaction let go of a
// segment under it.
public sealed partial class RaftLog
{
    /// <summary>The term of entry <paramref name="index"/>, from the index without reading the file; the snapshot's (or compaction's) term at <see cref="FirstIndex"/> - 1.</summary>
    /// <param name="index">From <see cref="FirstIndex"/> - 1 to <see cref="LastIndex"/>.</param>
    /// <param name="includeUnsynced">Whether entries written but not yet synced count.</param>
    /// <returns>The term.</returns>
    /// <exception cref="WalException">Compacted, Unavailable or Closed.</exception>
    public ulong Term(ulong index, bool includeUnsynced = false)
    {
        var view = Current();
        if (index == view.CompactedIndex)
            return view.CompactedTerm;
        if (index < view.CompactedIndex)
            throw Compacted(view, index);
        if (index > Bound(view, includeUnsynced))
            throw Unavailable(view, index, includeUnsynced);
        return view.Runs[view.RunOf(index)].TermOf(index);
    }

    /// <summary>Reads entry <paramref name="index"/>.</summary>
    /// <param name="index">From <see cref="FirstIndex"/> to <see cref="LastIndex"/>.</param>
    /// <param name="includeUnsynced">Whether entries written but not yet synced may be read.</param>
    /// <returns>The entry, its data a fresh copy.</returns>
    /// <exception cref="WalException">Compacted, Unavailable, CorruptRecord, Io or Closed.</exception>
    public Entry GetEntry(ulong index, bool includeUnsynced = false)
    {
        while (true)
        {
            var view = Current();
            if (index < view.FirstIndex)
                throw Compacted(view, index);
            if (index > Bound(view, includeUnsynced))
                throw Unavailable(view, index, includeUnsynced);
            var run = view.Runs[view.RunOf(index)];
            if (!run.Segment.TryAcquire())
            {
                Retrying(view);
                continue;
            }
            var reader = new EntryReader();
            try
            {
                long offset = run.OffsetOf(index);
                // Within a run frames lie in index order, so the next entry's offset bounds this
                // frame: one small read instead of a page (most of the cost of a GetEntry).
                long bound = index < run.Last ? run.OffsetOf(index + 1) - offset : EntryReader.FirstReadBytes;
                return reader.Read(run.Segment, offset, index, run.TermOf(index), offset, (int)Math.Min(bound, EntryReader.FirstReadBytes));
            }
            catch (Exception ex) when (ex is not WalException)
            {
                throw WalException.Io($"reading entry {index} from {run.Segment.FileName}", ex);
            }
            finally
            {
                reader.Dispose();
                run.Segment.Release();
            }
        }
    }

    /// <summary>
    /// Reads the entries from <paramref name="lo"/> up to but not including <paramref name="hi"/>,
    /// as raft's Storage.Entries: at most <paramref name="maxBytes"/> of encoded entries
    /// (raftpb.Entry's size), but always the first one, however large.
    /// </summary>
    /// <param name="lo">The first index; at least <see cref="FirstIndex"/>.</param>
    /// <param name="hi">One past the last index; at most <see cref="LastIndex"/> + 1.</param>
    /// <param name="maxBytes">The size limit; <see cref="ulong.MaxValue"/> for none.</param>
    /// <param name="includeUnsynced">Whether entries written but not yet synced may be read.</param>
    /// <returns>The entries, in order, their data fresh copies.</returns>
    /// <exception cref="WalException">InvalidArgument (lo above hi), Compacted, Unavailable, CorruptRecord, Io or Closed.</exception>
    public IReadOnlyList<Entry> GetEntries(ulong lo, ulong hi, ulong maxBytes = ulong.MaxValue, bool includeUnsynced = false)
    {
        if (lo > hi)
            throw WalException.InvalidArgument($"GetEntries({lo}, {hi}): lo is above hi.");
        while (true)
        {
            var view = Current();
            if (lo < view.FirstIndex)
                throw Compacted(view, lo);
            if (hi > Bound(view, includeUnsynced) + 1)
                throw Unavailable(view, hi - 1, includeUnsynced);
            if (lo == hi)
                return [];
            var entries = new List<Entry>((int)Math.Min(hi - lo, 1024));
            if (TryRead(view, lo, hi, maxBytes, entries))
                return entries;
            Retrying(view);
        }
    }

    /// <summary>Reads from one view; false when a segment was let go meanwhile, to try again from a newer view.</summary>
    private static bool TryRead(LogView view, ulong lo, ulong hi, ulong maxBytes, List<Entry> entries)
    {
        ulong size = 0;
        var reader = new EntryReader();
        try
        {
            ulong index = lo;
            for (int r = view.RunOf(lo); index < hi; r++)
            {
                var run = view.Runs[r];
                ulong end = Math.Min(hi, run.Last + 1);
                if (!run.Segment.TryAcquire())
                    return false;
                try
                {
                    long readAheadTo = run.OffsetOf(end - 1);
                    for (; index < end; index++)
                    {
                        var entry = reader.Read(run.Segment, run.OffsetOf(index), index, run.TermOf(index), readAheadTo);
                        size += (ulong)(RecordCodec.EntryHeaderSize(entry) + entry.Data.Length);
                        if (entries.Count > 0 && size > maxBytes)
                            return true;
                        entries.Add(entry);
                    }
                }
                catch (Exception ex) when (ex is not WalException)
                {
                    throw WalException.Io($"reading entry {index} from {run.Segment.FileName}", ex);
                }
                finally
                {
                    run.Segment.Release();
                }
            }
            return true;
        }
        finally
        {
            reader.Dispose();
        }
    }

    /// <summary>
    /// The entries from <paramref name="lo"/> on, read in batches of about a megabyte on the
    /// thread pool: up to <paramref name="hi"/> (exclusive), or, with the default, up to the last
    /// index as it is when each batch is read, so a reader catching up follows an appending log
    /// until it has caught up. Only synced entries are read.
    /// </summary>
    /// <param name="lo">The first index; at least <see cref="FirstIndex"/>.</param>
    /// <param name="hi">One past the last index wanted; <see cref="ulong.MaxValue"/> to read to the end.</param>
    /// <param name="cancellationToken">Stops the enumeration between batches.</param>
    /// <returns>The entries, in order.</returns>
    /// <exception cref="WalException">As <see cref="GetEntries"/>, raised while enumerating.</exception>
    public async IAsyncEnumerable<Entry> ReadEntriesAsync(
        ulong lo,
        ulong hi = ulong.MaxValue,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        const ulong batchBytes = 1 << 20;
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            ulong from = lo;
            var batch = await Task.Run(() =>
            {
                ulong end = Math.Min(hi, LastIndex + 1);
                return from < end ? GetEntries(from, end, batchBytes) : [];
            }, cancellationToken).ConfigureAwait(false);
            if (batch.Count == 0)
                yield break;
            foreach (var entry in batch)
                yield return entry;
            lo += (ulong)batch.Count;
        }
    }

    /// <summary>
    /// A segment of <paramref name="view"/> was let go before a reader got to it: a compaction
    /// or a close published a newer view first, which the reader asks next. Were the view still
    /// current, retrying would never end, so that is a broken invariant.
    /// </summary>
    private void Retrying(LogView view)
    {
        if (ReferenceEquals(view, Volatile.Read(ref _view)))
            throw WalException.InvalidState("A segment the log still holds entries in was released.");
    }

    private static ulong Bound(LogView view, bool includeUnsynced) => includeUnsynced ? view.LastIndex : view.DurableIndex;

    private static WalException Compacted(LogView view, ulong index) =>
        new(WalErrorKind.Compacted, $"Entry {index} is compacted: the log starts at index {view.FirstIndex}.");

    private static WalException Unavailable(LogView view, ulong index, bool includeUnsynced) =>
        new(WalErrorKind.Unavailable, $"Entry {index} is past the last {(includeUnsynced ? "written" : "synced")} index, {Bound(view, includeUnsynced)}.");
}
