using System.Runtime.CompilerServices;

namespace Wal.Log;

/// <summary>
/// The run the writer is appending to, in the tail segment. Its arrays grow by doubling; a
/// grown copy leaves the old arrays to the views that hold them, and appends write only past
/// every published slot, so readers never see a slot change under them.
/// </summary>
internal sealed class TailRun(LogSegment segment, ulong first)
{
    private long[] _offsets = new long[64];
    private ulong[] _terms = new ulong[64];
    private int _start;

    /// <summary>The segment the run's entries lie in.</summary>
    public LogSegment Segment { get; } = segment;

    /// <summary>The index of the first entry.</summary>
    public ulong First { get; private set; } = first;

    /// <summary>How many entries the run holds.</summary>
    public int Count { get; private set; }

    /// <summary>The index of the last entry (First - 1 while empty).</summary>
    public ulong Last => First + (ulong)Count - 1;

    /// <summary>Adds an entry that follows the last one.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void Append(long offset, ulong term)
    {
        int at = _start + Count;
        if (at == _offsets.Length)
        {
            Grow(1);
            at = Count;
        }
        _offsets[at] = offset;
        _terms[at] = term;
        Count++;
    }

    /// <summary>Makes room for at least <paramref name="entries"/> more entries in one allocation, for a scan that can tell how many will come.</summary>
    public void Reserve(int entries)
    {
        if (_start + Count + entries > _offsets.Length)
            Grow(entries);
    }

    /// <summary>Adds entries that follow the last one.</summary>
    public void Append(ReadOnlySpan<long> offsets, ReadOnlySpan<ulong> terms)
    {
        int needed = _start + Count + offsets.Length;
        if (needed > _offsets.Length)
            Grow(offsets.Length);
        offsets.CopyTo(_offsets.AsSpan(_start + Count));
        terms.CopyTo(_terms.AsSpan(_start + Count));
        Count += offsets.Length;
    }

    /// <summary>Moves the run into new arrays with room for <paramref name="more"/> entries past it, doubling at least.</summary>
    private void Grow(int more)
    {
        int capacity = Math.Max(Math.Max(2 * Count, Count + more), 64);
        // Every slot a reader may see is written before it is published, so the arrays need no zeroing.
        var grownOffsets = GC.AllocateUninitializedArray<long>(capacity);
        var grownTerms = GC.AllocateUninitializedArray<ulong>(capacity);
        _offsets.AsSpan(_start, Count).CopyTo(grownOffsets);
        _terms.AsSpan(_start, Count).CopyTo(grownTerms);
        _offsets = grownOffsets;
        _terms = grownTerms;
        _start = 0;
    }

    /// <summary>
    /// Keeps the first <paramref name="keep"/> entries. Only while nothing of the run has been
    /// published (the scan that opens a log): later appends would write over published slots.
    /// </summary>
    public void Shrink(int keep) => Count = keep;

    /// <summary>Drops the first <paramref name="drop"/> entries (a compaction).</summary>
    public void DropFront(int drop)
    {
        _start += drop;
        First += (ulong)drop;
        Count -= drop;
    }

    /// <summary>The terms of <paramref name="count"/> entries from the <paramref name="from"/>th.</summary>
    public ReadOnlySpan<ulong> Terms(int from, int count) => _terms.AsSpan(_start + from, count);

    /// <summary>The run as readers see it now.</summary>
    public IndexRun Run => new(Segment, First, _offsets, _terms, _start, Count);
}
