using System.Runtime.CompilerServices;
using Wal.Format;

namespace Wal.Reading;

/// <summary>
/// ReadAll's rules, applied one record at a time: the one place they are kept for every reader
/// that replays a log (ReadAll, Verify, the survey behind dump and check-dir, and RaftLog's index
/// scan), so the same records give the same errors, in the same order, whatever the reader
/// keeps. It holds what a replay learns (the metadata, the last hard state, whether the wanted
/// snapshot was seen, how many entries follow the snapshot); the caller keeps the entries, or
/// where they lie, or only their count.
/// </summary>
internal sealed class Replay(Snapshot start, RaftInvariants invariants, bool strict, Replay.EntryRule entries)
{
    /// <summary>What a replay does with entry records.</summary>
    public enum EntryRule
    {
        /// <summary>Decode each, check raft's invariants (when strict), and place it after the snapshot, as ReadAll does.</summary>
        Place,

        /// <summary>Decode each and check raft's invariants only (Verify, when strict; when not, they are left undecoded, as etcd's Verify does).</summary>
        Check,
    }

    /// <summary>The snapshot the replay starts from.</summary>
    public Snapshot Start { get; } = start;

    /// <summary>What raft's invariants learnt from the records, for a writer to go on with.</summary>
    public RaftInvariants Invariants { get; } = invariants;

    /// <summary>The log's metadata so far (null while none, or only empty ones, was read).</summary>
    public byte[]? Metadata { get; private set; }

    /// <summary>The last hard state read.</summary>
    public HardState State { get; private set; } = HardState.Empty;

    /// <summary>Whether the wanted snapshot's record was read.</summary>
    public bool SnapshotFound { get; private set; }

    /// <summary>How many entries follow the snapshot in the log as read so far (overwrites applied).</summary>
    public ulong Count { get; private set; }

    /// <summary>
    /// The last index the log's writer held when it stopped, as raft's invariants know it: the
    /// last entry record's index (at or below the snapshot too), raised by a snapshot record past
    /// it (as SaveSnapshot raises it) and, on a read that starts at a later segment, at least the
    /// index that segment is named after. A writer that goes on names its next segment after it.
    /// </summary>
    /// <remarks>
    /// etcd 3.4 takes the last entry record's index only. After a snapshot past the last entry
    /// (one installed from a leader), or a read of a later segment that holds no entry, its next
    /// segment is named for an index at or below the snapshot's: a later Open at that snapshot
    /// then starts its search at the new segment, past the snapshot record, and finds none.
    /// </remarks>
    public ulong LastIndex => Invariants.LastIndex;

    /// <summary>
    /// Applies one record. For an entry record placed after the snapshot it returns true with
    /// the entry (its data left out), its payload (a slice of the record, valid until the reader
    /// moves on) and its position after the snapshot (0 for the first): every entry from that
    /// position on is replaced, as etcd's ReadAll replaces them.
    /// </summary>
    /// <exception cref="WalException">CorruptRecord, MetadataConflict, SnapshotMismatch or SliceOutOfRange.</exception>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public bool Apply(in SegmentRecord record, out Entry entry, out ReadOnlySpan<byte> data, out ulong position)
    {
        entry = default;
        data = default;
        position = 0;
        if (strict)
            ReadRules.KeepsInvariants(record, Invariants.Segment(record.Segment));
        if (record.Type != RecordType.Entry)
        {
            ApplyOther(record);
            return false;
        }
        // Stryker disable once Boolean : under Check the answer is ignored (Verify keeps no entries)
        if (entries == EntryRule.Check && !strict)
            return false;
        if (!RecordCodec.TryParseEntry(record.Data, out ulong term, out ulong index, out var type, out data))
            throw ReadRules.Corrupt(record, "an entry record's data is not a raftpb.Entry");
        return Place(record, term, index, type, out entry, out position);
    }

    /// <summary>
    /// Applies an entry record already decoded, as <see cref="Apply"/> would: true when it is
    /// placed after the snapshot, at <paramref name="position"/>.
    /// </summary>
    /// <exception cref="WalException">As <see cref="Apply"/>.</exception>
    public bool ApplyEntry(in SegmentRecord record, ulong term, ulong index, EntryType type, out ulong position)
    {
        if (strict)
            ReadRules.KeepsInvariants(record, Invariants.Segment(record.Segment));
        return Place(record, term, index, type, out _, out position);
    }

    /// <summary>
    /// Places the <paramref name="count"/> entries from <paramref name="first"/> on, with the
    /// terms <paramref name="terms"/> give and raft's types, each following the one before in
    /// one segment, as <see cref="Apply"/> would one by one, and answers true, when they follow
    /// the last entry placed with no term below it (see <see cref="RaftInvariants.TryAcceptRun"/>).
    /// Otherwise answers false and places nothing.
    /// </summary>
    public bool TryPlaceRun(ulong first, int count, ReadOnlySpan<TermRun> terms)
    {
        if (count == 0)
            return true;
        // Each follows the last placed: no gap, and nothing replaced.
        if (entries != EntryRule.Place || first <= Start.Index || first - Start.Index - 1 != Count)
            return false;
        if (!Invariants.TryAcceptRun(first, count, terms))
            return false;
        Count += (ulong)count;
        return true;
    }

    /// <summary>
    /// Takes a hard state, as <see cref="Apply"/> takes its record, that is known to keep raft's
    /// invariants: it follows another hard state in the same segment, checked against it, with
    /// nothing but entries that follow one another between them.
    /// </summary>
    public void TakeCheckedState(HardState state)
    {
        Invariants.Accept(state);
        State = state;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool Place(in SegmentRecord record, ulong term, ulong index, EntryType type, out Entry entry, out ulong position)
    {
        position = 0;
        // The invariants read the term, index and type only: the payload is not copied here.
        entry = new Entry(term, index, type, ReadOnlyMemory<byte>.Empty);
        if (!Invariants.TryAcceptNext(term, index, type))
        {
            if (strict)
                ReadRules.KeepsInvariants(record, Invariants.Violation(entry, checkGap: false));
            Invariants.Accept(entry);
        }
        // Stryker disable once Boolean : under Check the answer is ignored (Verify keeps no entries)
        if (entries == EntryRule.Check)
            return false;
        if (index <= Start.Index)
            return false;
        // Compare without forming the position, which a huge index would overflow (CVE-2020-15112).
        position = index - Start.Index - 1;
        if (position > Count)
            throw Gap(record, index);
        Count = position + 1;
        return true;
    }

    /// <summary>Applies a record other than an entry (kept out of the entry path, which runs for almost every record).</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void ApplyOther(in SegmentRecord record)
    {
        switch (record.Type)
        {
            case RecordType.State:
                var state = ReadRules.DecodeState(record);
                if (strict)
                    ReadRules.KeepsInvariants(record, Invariants.Violation(state));
                Invariants.Accept(state);
                State = state;
                return;
            case RecordType.Metadata:
                Metadata = ReadRules.AcceptMetadata(record, Metadata);
                return;
            case RecordType.Crc:
                return;
            case RecordType.Snapshot:
                if (ReadRules.MatchSnapshot(record, Start))
                    SnapshotFound = true;
                Invariants.Accept(ReadRules.DecodeSnapshot(record));
                return;
            default:
                throw ReadRules.UnknownType(record);
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private WalException Gap(in SegmentRecord record, ulong index) =>
        new(WalErrorKind.SliceOutOfRange,
            $"Entry {index} in {record.Segment} leaves a gap: only {Count} entries follow snapshot index {Start.Index}.");

    /// <summary>The message of SnapshotNotFound, for when the wanted snapshot's record was not read.</summary>
    public string SnapshotNotFoundMessage => $"The WAL holds no snapshot record at index {Start.Index}, term {Start.Term}.";
}
