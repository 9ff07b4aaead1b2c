using Wal.Format;
using Wal.Reading;
using Wal.Storage;

namespace Wal.Log;

/// <summary>
/// RaftLog.Open's read of a large log on two cores, split at a segment boundary. Another
/// thread reads the first segments as one reader always has (CRC, replay, index: an
/// <see cref="IndexBuilder"/>); this one reads the rest with the CRC, keeping each segment's
/// entries in a run of their own and what it cannot judge alone (a <see cref="SegmentScan"/>).
/// Each record is framed and checked once, by one of the two. The files of a file system
/// plugged in through <see cref="IFileSystem"/> are read by one thread at a time: there this
/// thread reads the first half too, before the second, so the simulated disk (and the
/// explorer on it) puts the same read under test.
/// </summary>
/// <remarks>
/// The two halves are joined as one reader would have read on: the second half must start
/// with its first segment's Crc record, carrying the chain the first half ended with (a reader
/// that starts past the first segment adopts a Crc record's value, as one reading on checks
/// it). The index then applies each later segment's head record by record, and its body at
/// once, which <see cref="SegmentScan"/> found to change nothing but the last index, the terms
/// and the hard state. So the result is the one a single reader gives, by construction rather
/// than by comparison. Whatever falls outside that (damage, a torn tail, an overwrite or a
/// snapshot record past the last entry in the second half, a chain that does not join) makes
/// the split answer null, and the log is read again by the readers that do not split, which
/// find and report it.
/// </remarks>
internal static class SplitScan
{
    // The first half replays and indexes as it reads, about a fifth more work a record than the
    // second half's runs (wal-bench open-log, 1 GB of 100-byte entries), so it takes a little
    // less than half of the log's bytes.
    private const double FirstShare = 0.46;

    /// <summary>
    /// Reads the log in <paramref name="files"/> as <see cref="IndexScan.Read"/> would, split
    /// between two threads (one after the other, for a plugged-in file system), with where its
    /// data ends and the chain there; null when it is not worth splitting (one segment, fewer
    /// than <paramref name="minBytes"/> in the sealed segments, the operating system's files on
    /// one core) or the split read cannot vouch for its result.
    /// </summary>
    public static (IndexScan.Found Found, long Offset, uint Crc)? TryRead(IReadOnlyList<IStorageFile> files, IReadOnlyList<string> names,
        int mapped, IReadOnlyList<FileMapping?>? lent, IReadOnlyList<LogSegment> segments, Snapshot start, bool strict, long minBytes)
    {
        if (files.Count < 2 || SegmentDirectory.SealedBytes(files) < minBytes)
            return null;
        bool plugged = files.Any(f => f is not IMappableFile);
        // On one core the operating system's files are read by one reader, as they always were.
        if (!plugged && Environment.ProcessorCount < 2)
            return null;
        int split = SplitPoint(files);
        using var stop = new CancellationTokenSource();
        var first = new FirstHalf(files.Take(split).ToList(), names.Take(split).ToList(), Math.Min(mapped, split),
            lent?.Take(split).ToList(), segments, start, strict, stop.Token);
        Thread? worker = null;
        if (plugged)
        {
            first.Run();
        }
        else
        {
            try
            {
                worker = new Thread(first.Run) { IsBackground = true, Name = "wal open, first half" };
                worker.Start();
            }
            catch (Exception ex) when (ex is OutOfMemoryException or ThreadStartException)
            {
                return null;
            }
        }
        try
        {
            var later = segments.Skip(split).ToList();
            using var reader = new SegmentReader(files.Skip(split).ToList(), names.Skip(split).ToList(), checkCrc: true,
                mapped: Math.Max(0, mapped - split), lent: lent?.Skip(split).ToList());
            var scans = SegmentScan.ReadAll(reader, later, start, stop.Token);
            if (scans is null)
                return null;
            worker?.Join();
            if (first.Builder is not { } builder || !Joins(first.Crc, scans, later[0]))
                return null;
            foreach (var scan in scans)
            {
                if (!builder.TryApply(scan))
                    return null;
            }
            return (builder.Finish(), reader.Offset, reader.Crc);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            // Read again, and reported, by the readers that do not split.
            return null;
        }
        finally
        {
            stop.Cancel();
            // No file is read after its owner closes it.
            worker?.Join();
        }
    }

    /// <summary>
    /// Whether the second half's first record is what one reader reading on from
    /// <paramref name="chain"/> would take there: its first segment's Crc record, carrying
    /// that chain (or any, after a chain of 0, which a reader does not check).
    /// </summary>
    private static bool Joins(uint chain, List<SegmentScan> scans, LogSegment firstLater) =>
        scans.Count > 0 && scans[0].Segment == firstLater && scans[0].Head.Count > 0
        && scans[0].Head[0] is { Type: RecordType.Crc } head && (chain == 0 || head.Crc == chain);

    /// <summary>How many segments, from the first, the first half reads: at least one, and at least one left.</summary>
    private static int SplitPoint(IReadOnlyList<IStorageFile> files)
    {
        // The tail is preallocated, its length no measure of what it holds: half of it is the guess.
        long total = 0;
        for (int i = 0; i < files.Count; i++)
            total += Weight(files, i);
        double target = FirstShare * total;
        int best = 1;
        double bestGap = double.MaxValue;
        long sum = 0;
        for (int k = 1; k < files.Count; k++)
        {
            sum += Weight(files, k - 1);
            double gap = Math.Abs(sum - target);
            if (gap < bestGap)
            {
                best = k;
                bestGap = gap;
            }
        }
        return best;
    }

    private static long Weight(IReadOnlyList<IStorageFile> files, int i) =>
        i < files.Count - 1 ? files[i].Length : files[i].Length / 2;

    /// <summary>The first half's read, on its own thread.</summary>
    private sealed class FirstHalf(IReadOnlyList<IStorageFile> files, IReadOnlyList<string> names, int mapped,
        IReadOnlyList<FileMapping?>? lent, IReadOnlyList<LogSegment> segments, Snapshot start, bool strict, CancellationToken stop)
    {
        /// <summary>The index of the first half, once it read to a clean end; null if it did not.</summary>
        public IndexBuilder? Builder { get; private set; }

        /// <summary>The chain after the first half's last record.</summary>
        public uint Crc { get; private set; }

        public void Run()
        {
            try
            {
                using var reader = new SegmentReader(files, names, checkCrc: true, mapped: mapped, lent: lent);
                var builder = new IndexBuilder(segments, start, strict);
                builder.Read(reader, stop);
                Crc = reader.Crc;
                Builder = builder;
            }
            catch (Exception)
            {
                // Damage here is found again, and reported, by the readers that do not split.
            }
        }
    }
}
