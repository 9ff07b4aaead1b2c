namespace Wal.Reading;

/// <summary>
/// Where raft's overwrites take effect in a log, for a reader that shows ReadAll's entries
/// without holding them: an entry record whose index is already in the log (a new leader's
/// entry) drops every entry from that index on that came before it. An entry record survives
/// ReadAll exactly when every overwrite after it brings a higher index. Only the cuts that
/// matter are kept: a cut whose index is at or above a later cut's drops nothing the later one
/// does not, so the kept cuts' indexes rise along the log and their number is at most the
/// number of overwrites (a handful per leader change), never the number of entries.
/// </summary>
internal sealed class OverwriteCuts
{
    private readonly List<(long Position, ulong Index)> _cuts = [];

    /// <summary>How many cuts are kept.</summary>
    public int Count => _cuts.Count;

    /// <summary>Takes an overwrite: the entry record at <paramref name="position"/> (its ordinal in the read) has <paramref name="index"/>, which the log already held.</summary>
    public void Add(long position, ulong index)
    {
        // Stryker disable once Equality : a kept cut at the same index answers every later position as the new one does
        while (_cuts.Count > 0 && _cuts[^1].Index >= index)
            _cuts.RemoveAt(_cuts.Count - 1);
        _cuts.Add((position, index));
    }

    /// <summary>
    /// Whether the entry record at <paramref name="position"/> with <paramref name="index"/>
    /// survives every later overwrite. Positions must be asked in rising order;
    /// <paramref name="next"/> (0 at the start) is the caller's cursor over the cuts.
    /// </summary>
    public bool Survives(long position, ulong index, ref int next)
    {
        while (next < _cuts.Count && _cuts[next].Position <= position)
            next++;
        // The first later cut has the lowest index of all later cuts.
        return next == _cuts.Count || index < _cuts[next].Index;
    }
}
