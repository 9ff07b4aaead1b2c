namespace Wal.Log;

/// <summary>
/// One published state of a <see cref="RaftLog"/>, immutable: readers take the current view
/// and answer from it alone, so whatever the writer does meanwhile, an answer is a state the
/// log was in. The runs cover exactly the entries from <see cref="FirstIndex"/> to
/// <see cref="LastIndex"/>, in order.
/// </summary>
internal sealed record LogView(
    IndexRun[] Runs,
    ulong CompactedIndex,
    ulong CompactedTerm,
    ulong LastIndex,
    ulong DurableIndex,
    HardState State,
    Snapshot Snapshot,
    bool Closed)
{
    /// <summary>The view of a closed log.</summary>
    public static LogView ClosedLog { get; } = new([], 0, 0, 0, 0, HardState.Empty, Snapshot.Zero, true);

    /// <summary>The first index a reader may ask for.</summary>
    public ulong FirstIndex => CompactedIndex + 1;

    /// <summary>The position in <see cref="Runs"/> of the run that holds <paramref name="index"/>, which must be in the view.</summary>
    public int RunOf(ulong index)
    {
        int lo = 0, hi = Runs.Length - 1;
        while (lo < hi)
        {
            int mid = (lo + hi + 1) / 2;
            if (Runs[mid].First <= index)
                lo = mid;
            else
                hi = mid - 1;
        }
        return lo;
    }

    /// <summary>The runs holding the entries below <paramref name="index"/> only.</summary>
    public IndexRun[] RunsBelow(ulong index)
    {
        if (index > LastIndex)
            return Runs;
        if (index <= FirstIndex)
            return [];
        int at = RunOf(index);
        var run = Runs[at];
        int keep = (int)(index - run.First);
        var runs = Runs.AsSpan(0, keep > 0 ? at + 1 : at).ToArray();
        if (keep > 0)
            runs[^1] = run.Take(keep);
        return runs;
    }

    /// <summary>The runs holding the entries from <paramref name="index"/> on only.</summary>
    public IndexRun[] RunsFrom(ulong index)
    {
        if (index <= FirstIndex)
            return Runs;
        if (index > LastIndex)
            return [];
        int at = RunOf(index);
        var run = Runs[at];
        var runs = Runs.AsSpan(at).ToArray();
        runs[0] = run.Skip((int)(index - run.First));
        return runs;
    }
}
