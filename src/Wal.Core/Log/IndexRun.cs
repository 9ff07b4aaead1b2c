using Wal.Reading;

namespace Wal.Log;

/// <summary>
/// Where a run of consecutive entries lies in one segment: each entry's frame offset (8 bytes
/// an entry) and where each term starts (<see cref="TermRun"/>, one per change of term). A run
/// is immutable once published; the arrays may be shared with the writer's
/// <see cref="TailRun"/>, which only ever writes past the slots a published run covers.
/// </summary>
internal sealed class IndexRun(LogSegment segment, ulong first, long[] offsets, int start, int count, TermRun[] terms, int termCount)
{
    /// <summary>The segment the entries lie in.</summary>
    public LogSegment Segment { get; } = segment;

    /// <summary>The index of the first entry.</summary>
    public ulong First { get; } = first;

    /// <summary>How many entries the run holds (at least one).</summary>
    public int Count { get; } = count;

    /// <summary>The index of the last entry.</summary>
    public ulong Last => First + (ulong)Count - 1;

    /// <summary>Where the frame of entry <paramref name="index"/> starts in the segment.</summary>
    public long OffsetOf(ulong index) => offsets[start + (int)(index - First)];

    /// <summary>The term of entry <paramref name="index"/>.</summary>
    public ulong TermOf(ulong index) => TermRun.TermOf(terms.AsSpan(0, termCount), index);

    /// <summary>The first <paramref name="keep"/> entries.</summary>
    public IndexRun Take(int keep) => new(Segment, First, offsets, start, keep, terms, termCount);

    /// <summary>The run without its first <paramref name="drop"/> entries.</summary>
    public IndexRun Skip(int drop) => new(Segment, First + (ulong)drop, offsets, start + drop, Count - drop, terms, termCount);

    /// <summary>The same run in arrays of its exact size, when the shared ones hold much more.</summary>
    public IndexRun Trimmed()
    {
        if (offsets.Length <= Count + Count / 4 + 64)
            return this;
        return new IndexRun(Segment, First, offsets.AsSpan(start, Count).ToArray(), 0, Count, terms.AsSpan(0, termCount).ToArray(), termCount);
    }
}
