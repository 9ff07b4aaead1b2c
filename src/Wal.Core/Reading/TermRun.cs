namespace Wal.Reading;

/// <summary>
/// Where a term starts in a run of entries: raft's terms change rarely, so an index keeps one
/// of these per change rather than a term per entry.
/// </summary>
/// <param name="First">The index of the first entry with the term.</param>
/// <param name="Term">The term.</param>
internal readonly record struct TermRun(ulong First, ulong Term)
{
    /// <summary>The term of entry <paramref name="index"/>: the last of <paramref name="runs"/> (sorted by first index, the first at or below it) starting at or below it.</summary>
    public static ulong TermOf(ReadOnlySpan<TermRun> runs, ulong index)
    {
        // A run's entries seldom span more than a few terms: look back from the last, and
        // search only when there are many.
        int i = runs.Length - 1;
        if (i >= 8 && runs[i].First > index)
        {
            int lo = 0, hi = i;
            // The last run whose first index is at or below index lies in [lo, hi).
            while (hi - lo > 1)
            {
                int mid = (lo + hi) >>> 1;
                if (runs[mid].First <= index)
                    lo = mid;
                else
                    hi = mid;
            }
            return runs[lo].Term;
        }
        while (runs[i].First > index)
            i--;
        return runs[i].Term;
    }
}
