using System.Runtime.CompilerServices;
using Wal.Format;
using Wal.Reading;
using Wal.Storage;

namespace Wal.Log;

/// <summary>
/// Reads a log once, as ReadAll does and with ReadAll's rules (<see cref="ReadRules"/>), but
/// keeps where each entry lies instead of the entry: the index a <see cref="RaftLog"/> answers
/// from. Entries at or below the snapshot are skipped; an entry whose index is present
/// replaces it and everything after it; an index past the end is SliceOutOfRange. Raft's
/// invariants are checked as ReadAll checks them (when <c>strict</c>), and what they learn is
/// handed to the writer, which refuses Saves that would break them.
/// </summary>
internal static class IndexScan
{
    /// <summary>What the scan found.</summary>
    /// <param name="Runs">Where the entries after the snapshot lie.</param>
    /// <param name="Metadata">The log's metadata.</param>
    /// <param name="State">The last hard state.</param>
    /// <param name="LastIndex">The last index the writer held (see <see cref="Reading.Replay.LastIndex"/>), from which a cut names the next segment.</param>
    /// <param name="Invariants">What raft's invariants learnt from the records, for the writer.</param>
    public readonly record struct Found(IndexRun[] Runs, byte[] Metadata, HardState State, ulong LastIndex, RaftInvariants Invariants);

    /// <summary>
    /// Reads the log in <paramref name="files"/> (named <paramref name="names"/>, the first
    /// <paramref name="mapped"/> of them mapped) as <see cref="Read"/> does, and says where its
    /// data ends and the CRC chain there, for the writer that goes on. A large log is read split
    /// between two cores (<see cref="SplitScan"/>); when that read cannot vouch for its result,
    /// it is read without the CRC beside a <see cref="ChainCheck"/> on another core, and read
    /// again with checks unless the check confirms it; so the result, or the error, is always a
    /// checked pass's.
    /// </summary>
    /// <exception cref="WalException">As <see cref="Read"/>.</exception>
    public static (Found Found, long Offset, uint Crc) ReadLog(IReadOnlyList<IStorageFile> files, IReadOnlyList<string> names, int mapped,
        IReadOnlyList<LogSegment> segments, Snapshot start, bool strict, long minBytes)
    {
        // Every reader here reads through the segments' own mappings, which the log keeps for its
        // readers: each page is faulted in once, and none is unmapped after the scan.
        var lent = mapped > 0 ? segments.Select(s => s.Mapping()).ToList() : null;
        if (SplitScan.TryRead(files, names, mapped, lent, segments, start, strict, minBytes) is { } split)
            return split;
        using (var check = ChainCheck.Start(files, names, mapped, lent, minBytes))
        {
            if (check is not null)
            {
                using var fast = new SegmentReader(files, names, checkCrc: false, mapped: mapped, lent: lent);
                try
                {
                    var found = Read(fast, segments, start, strict);
                    if (check.Confirms(fast, ReadStatus.End))
                        return (found, fast.Offset, check.Crc);
                }
                catch (Exception ex) when (ex is not OutOfMemoryException)
                {
                    // Found again, and reported, by the checked pass below.
                }
            }
        }
        using var reader = new SegmentReader(files, names, mapped: mapped, lent: lent);
        var result = Read(reader, segments, start, strict);
        return (result, reader.Offset, reader.Crc);
    }

    /// <summary>
    /// Reads every record of <paramref name="segments"/> through <paramref name="reader"/> (which
    /// reads the same files, in the same order) to a clean end.
    /// </summary>
    /// <exception cref="WalException">As ReadAll in write mode, SnapshotNotFound without contents.</exception>
    public static Found Read(SegmentReader reader, IReadOnlyList<LogSegment> segments, Snapshot start, bool strict)
    {
        var builder = new IndexBuilder(segments, start, strict);
        builder.Read(reader);
        return builder.Finish();
    }
}
