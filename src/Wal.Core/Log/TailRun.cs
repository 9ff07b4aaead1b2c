using System.Runtime.CompilerServices;
using Wal.Reading;

namespace Wal.Log;

/// <summary>
/// The run the writer is appending to, in the tail segment. Its arrays grow by doubling; a
/// grown copy leaves the old arrays to the views that hold them, and appends write only past
/// every published slot, so readers never see a slot change under them.
/// </summary>
internal sealed class TailRun(LogSegment segment, ulong first)
{
    private long[] _offsets = new long[64];
    private int _start;
    // Where each term starts, by index, so compactions and growth leave them as they are.
    private TermRun[] _terms = new TermRun[4];
    private int _termCount;

    /// <summary>The segment the run's entries lie in.</summary>
    public LogSegment Segment { get; } = segment;

    /// <summary>The index of the first entry.</summary>
    public ulong First { get; private set; } = first;

    /// <summary>How many entries the run holds.</summary>
    public int Count { get; private set; }

    /// <summary>The index of the last entry (First - 1 while empty).</summary>
    public ulong Last => First + (ulong)Count - 1;

    /// <summary>
    /// The terms of the <paramref name="count"/> entries from <paramref name="index"/>: where
    /// each starts, the first at or below <paramref name="index"/>.
    /// </summary>
    public ReadOnlySpan<TermRun> TermsOver(ulong index, int count)
    {
        var terms = _terms.AsSpan(0, _termCount);
        int from = terms.Length - 1;
        while (from > 0 && terms[from].First > index)
            from--;
        int to = from + 1;
        while (to < terms.Length && terms[to].First < index + (ulong)count)
            to++;
        return terms[from..to];
    }

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
        if (_termCount == 0 || _terms[_termCount - 1].Term != term)
            AddTerm(Last + 1, term);
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
        for (int i = 0; i < terms.Length; i++)
        {
            if (_termCount == 0 || _terms[_termCount - 1].Term != terms[i])
                AddTerm(Last + 1 + (ulong)i, terms[i]);
        }
        Count += offsets.Length;
    }

    /// <summary>Records that the term <paramref name="term"/> starts at entry <paramref name="index"/>, past every published slot.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void AddTerm(ulong index, ulong term)
    {
        if (_termCount == _terms.Length)
        {
            // A fresh array: published runs hold the old one.
            var grown = new TermRun[2 * _terms.Length];
            _terms.AsSpan(0, _termCount).CopyTo(grown);
            _terms = grown;
        }
        _terms[_termCount++] = new TermRun(index, term);
    }

    /// <summary>Moves the run into new arrays with room for <paramref name="more"/> entries past it, doubling at least.</summary>
    private void Grow(int more)
    {
        int capacity = Math.Max(Math.Max(2 * Count, Count + more), 64);
        // Every slot a reader may see is written before it is published, so the array needs no zeroing.
        var grown = GC.AllocateUninitializedArray<long>(capacity);
        _offsets.AsSpan(_start, Count).CopyTo(grown);
        _offsets = grown;
        _start = 0;
    }

    /// <summary>
    /// Keeps the first <paramref name="keep"/> entries. Only while nothing of the run has been
    /// published (the scan that opens a log): later appends would write over published slots.
    /// </summary>
    public void Shrink(int keep)
    {
        Count = keep;
        // The terms that start past the last entry kept go too; the first one always stays.
        while (_termCount > 1 && _terms[_termCount - 1].First > Last)
            _termCount--;
        if (keep == 0)
            _termCount = 0;
    }

    /// <summary>Drops the first <paramref name="drop"/> entries (a compaction).</summary>
    public void DropFront(int drop)
    {
        _start += drop;
        First += (ulong)drop;
        Count -= drop;
    }

    /// <summary>The run as readers see it now.</summary>
    public IndexRun Run => new(Segment, First, _offsets, _start, Count, _terms, _termCount);
}
