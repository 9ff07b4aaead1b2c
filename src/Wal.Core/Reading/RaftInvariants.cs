using System.Runtime.CompilerServices;

namespace Wal.Reading;

/// <summary>
/// Raft's invariants over the records of a log, kept as a second checksum: etcd's format leaves
/// each record's type byte outside its CRC, so one flipped byte can turn a state record into an
/// entry the CRC accepts. Raft never writes what breaks these, so a record that does is damage
/// (<see cref="WalErrorKind.CorruptRecord"/> when read) or a caller's mistake (a Save refused
/// before anything is written):
/// <list type="bullet">
/// <item>an entry's type is 0, 1 or 2;</item>
/// <item>an entry follows the one before it or replaces a suffix (no gap), and never replaces an entry at or below the last saved commit;</item>
/// <item>terms never go backwards along the log (an overwrite may bring a lower term than the entry it replaces, so that is no invariant);</item>
/// <item>a hard state's term never decreases, its vote does not change within a term once cast, and its commit never exceeds the highest index written.</item>
/// </list>
/// The terms of the log are kept as runs (first index, term), so memory grows with term
/// changes, not entries. A log read from a later segment starts knowing nothing before it.
/// </summary>
internal sealed class RaftInvariants
{
    private readonly List<(ulong First, ulong Term)> _runs = [];
    private ulong _lastIndex;
    // Read from a later segment, before the first hard state there.
    private bool _partial;
    private HardState _state;

    /// <summary>
    /// For a reader of the segments <paramref name="fileNames"/>: a segment is named for the
    /// index after the last entry before it, so a read that starts at a later segment knows the
    /// log reached that far (and no terms).
    /// </summary>
    public static RaftInvariants After(IReadOnlyList<string> fileNames)
    {
        var invariants = new RaftInvariants();
        if (fileNames.Count > 0 && Format.SegmentName.TryParse(fileNames[0], out var name) && name.Index > 0)
        {
            invariants._lastIndex = name.Index - 1;
            invariants._partial = true;
        }
        return invariants;
    }

    /// <summary>The last index the log holds as far as the records read tell: the last entry's, raised by snapshot records past it and by what a read from a later segment knows.</summary>
    public ulong LastIndex => _lastIndex;

    /// <summary>Why <paramref name="entry"/> cannot come next, or null; <paramref name="checkGap"/> for writers (readers report gaps as etcd does).</summary>
    public string? Violation(in Entry entry, bool checkGap)
    {
        if ((ulong)entry.Type > 2)
            return $"entry {entry.Index} has type {(ulong)entry.Type}; raft's types are 0, 1 and 2";
        if (checkGap && entry.Index > _lastIndex + 1)
            return $"entry {entry.Index} would leave a gap after the last index {_lastIndex}";
        // Known entries need not have been read: a commit read from a cut's header, or resting on
        // a snapshot record, covers indexes the log held all the same.
        if (entry.Index <= _lastIndex && entry.Index <= _state.Commit)
            return $"entry {entry.Index} would replace a committed entry (commit {_state.Commit})";
        if (TermBefore(entry.Index) is ulong before && entry.Term < before)
            return $"entry {entry.Index} has term {entry.Term}, below term {before} of the entry before it";
        return null;
    }

    /// <summary>
    /// Takes an entry that follows the last one with the same term and one of raft's types, as
    /// almost every entry of a log does, and answers true; anything else (false) is left for
    /// <see cref="Violation(in Entry, bool)"/> and <see cref="Accept(in Entry)"/>. Such an entry
    /// breaks no invariant (it replaces nothing, and its term is the term before it), and taking
    /// it only moves the last index.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public bool TryAcceptNext(ulong term, ulong index, EntryType type)
    {
        if ((ulong)type > 2 || index != _lastIndex + 1 || index == 0 || _runs.Count == 0)
            return false;
        var (first, lastTerm) = _runs[^1];
        if (lastTerm != term || first > _lastIndex)
            return false;
        _lastIndex = index;
        return true;
    }

    /// <summary>
    /// Takes the <paramref name="count"/> entries from <paramref name="first"/> on, with the
    /// terms <paramref name="terms"/> give (where each starts, the first at or below
    /// <paramref name="first"/>), as one <see cref="TryAcceptNext"/> or
    /// <see cref="Accept(in Entry)"/> each would take them, and answers true, when none of them
    /// could break an invariant: the first follows the last index, and no term is below the one
    /// before it (their types the caller has checked). Such entries replace nothing, so the
    /// commit does not matter, and the term before each is the last one taken. Otherwise answers
    /// false and takes nothing.
    /// </summary>
    public bool TryAcceptRun(ulong first, int count, ReadOnlySpan<TermRun> terms)
    {
        if (count == 0)
            return true;
        if (_runs.Count == 0 || first == 0 || first != _lastIndex + 1 || _runs[^1].First > _lastIndex
            || ulong.MaxValue - first < (ulong)count - 1 || terms.IsEmpty || terms[0].First > first)
            return false;
        int kept = _runs.Count;
        ulong term = _runs[^1].Term;
        foreach (var run in terms)
        {
            if (run.Term == term)
                continue;
            if (run.Term < term)
            {
                _runs.RemoveRange(kept, _runs.Count - kept);
                return false;
            }
            term = run.Term;
            _runs.Add((Math.Max(run.First, first), term));
        }
        _lastIndex = first + (ulong)count - 1;
        return true;
    }

    /// <summary>Takes <paramref name="entry"/> as the log's last entry.</summary>
    public void Accept(in Entry entry)
    {
        // An overwrite drops the runs from its index on.
        // Stryker disable once Equality : a run left at the overwrite's own index is shadowed by the one added after it
        while (_runs.Count > 0 && _runs[^1].First >= entry.Index)
            _runs.RemoveAt(_runs.Count - 1);
        if (_runs.Count == 0 || _runs[^1].Term != entry.Term)
            _runs.Add((entry.Index, entry.Term));
        _lastIndex = entry.Index;
    }

    /// <summary>Why <paramref name="state"/> cannot come next, or null.</summary>
    public string? Violation(HardState state) => Violation(state, _lastIndex);

    // A read from a later segment starts with the state its cut repeated, whose commit may rest
    // on a snapshot record in a segment not read: it is taken as known, not checked.
    private string? Violation(HardState state, ulong last) => _partial ? null : StateViolation(_state, state, last);

    /// <summary>
    /// Why <paramref name="state"/> cannot follow <paramref name="before"/> in a log whose last
    /// index is <paramref name="last"/>, or null.
    /// </summary>
    // Raft commits only entries the log holds: the commit never passes the last index (after
    // overwrites; a snapshot record counts as an index held), as check-dir's CommitBeyondLastEntry.
    public static string? StateViolation(HardState before, HardState state, ulong last)
    {
        if (state.Term < before.Term)
            return $"a hard state's term {state.Term} is below the term {before.Term} before it";
        if (state.Term == before.Term && before.Vote != 0 && state.Vote != before.Vote)
            return $"a hard state changes the vote from {before.Vote} to {state.Vote} within term {state.Term}";
        if (state.Commit > last)
            return $"a hard state commits {state.Commit}, beyond the last index {last}";
        return null;
    }

    /// <summary>
    /// Why a Save of <paramref name="entries"/> then <paramref name="state"/> would break an
    /// invariant or leave a gap, or null; checked whole before anything is written.
    /// </summary>
    public string? SaveViolation(ReadOnlySpan<Entry> entries, HardState state)
    {
        if (!entries.IsEmpty)
        {
            if (Violation(entries[0], checkGap: true) is string first)
                return first;
            for (int i = 1; i < entries.Length; i++)
            {
                ref readonly var previous = ref entries[i - 1];
                ref readonly var entry = ref entries[i];
                if (entry.Index != previous.Index + 1)
                    return $"entry {entry.Index} does not follow entry {previous.Index} in the same Save";
                if ((ulong)entry.Type > 2)
                    return $"entry {entry.Index} has type {(ulong)entry.Type}; raft's types are 0, 1 and 2";
                if (entry.Term < previous.Term)
                    return $"entry {entry.Index} has term {entry.Term}, below term {previous.Term} of the entry before it";
            }
        }
        if (state.IsEmpty)
            return null;
        ulong last = entries.IsEmpty ? _lastIndex : entries[^1].Index;
        // After a read from a later segment the writer still knows the log reaches _lastIndex; a
        // commit past it would be written, and then refused by a read of the whole log.
        if (_partial && state.Commit > last)
            return $"a hard state commits {state.Commit}, beyond the last index {last}";
        return Violation(state, last);
    }

    /// <summary>Takes a Save checked by <see cref="SaveViolation"/>.</summary>
    public void Accept(ReadOnlySpan<Entry> entries, HardState state)
    {
        foreach (ref readonly var entry in entries)
            Accept(entry);
        if (!state.IsEmpty)
            Accept(state);
    }

    /// <summary>Takes <paramref name="state"/> as the last hard state.</summary>
    public void Accept(HardState state)
    {
        if (_partial)
        {
            // Taken as known: the log held the entries it commits.
            _lastIndex = Math.Max(_lastIndex, state.Commit);
            _partial = false;
        }
        _state = state;
    }

    /// <summary>Takes a snapshot record: raft has every entry up to its index, the last at its term.</summary>
    public void Accept(Snapshot snapshot)
    {
        if (snapshot.Index > _lastIndex)
        {
            _runs.Add((snapshot.Index, snapshot.Term));
            _lastIndex = snapshot.Index;
        }
    }

    private string? _segment;

    /// <summary>
    /// Why the segment <paramref name="fileName"/> cannot follow what was read, or null: a cut
    /// names the new segment for the entry after the last one written, so entries can be missing
    /// before it only if the log was damaged (a retyped record that overwrote the tail, say).
    /// </summary>
    public string? Segment(string fileName) =>
        // Records come a segment at a time, each naming its segment with the same string.
        ReferenceEquals(fileName, _segment) ? null : NewSegment(fileName);

    [MethodImpl(MethodImplOptions.NoInlining)]
    private string? NewSegment(string fileName)
    {
        if (fileName == _segment)
            return null;
        bool first = _segment is null;
        _segment = fileName;
        // The last index is known without entries too: from a snapshot record, or from the name
        // of the segment a read started at.
        if (first || !Format.SegmentName.TryParse(fileName, out var name))
            return null;
        return name.Index > _lastIndex + 1
            ? $"{fileName} is named for entries from {name.Index}, but the last entry before it is {_lastIndex}"
            : null;
    }

    /// <summary>All it holds, for tests that compare two reads of one log.</summary>
    public override string ToString() =>
        $"last {_lastIndex}, state {_state}, partial {_partial}, segment {_segment}, terms [{string.Join(", ", _runs.Select(r => $"{r.First}:{r.Term}"))}]";

    private ulong? TermBefore(ulong index)
    {
        // Stryker disable once Equality : a run can start at 0 only after an entry 0, which raft's invariants refuse
        if (index <= 1)
            return null;
        for (int i = _runs.Count - 1; i >= 0; i--)
        {
            if (_runs[i].First <= index - 1)
                return index - 1 <= _lastIndex ? _runs[i].Term : null;
        }
        return null;
    }
}
