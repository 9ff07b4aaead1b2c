namespace Wal.Interop;

/// <summary>
/// etcd ReadAll's rules over the records a log gives back, in the order written (the model's
/// <c>Stream.readAll</c>): entries at or below the snapshot are skipped; an entry whose index is present
/// replaces it and every entry after it; an index more than one past the last is
/// <c>SliceOutOfRange</c>; the last hard state wins; empty metadata is read as none, and metadata
/// differing from an earlier non-empty one is <c>MetadataConflict</c>; a marker at the snapshot's
/// index with another term is <c>SnapshotMismatch</c>; no marker there is <c>SnapshotNotFound</c>,
/// with the contents.
/// </summary>
public sealed class ReadAll
{
    private readonly ulong snapIndex;
    private readonly ulong snapTerm;
    private readonly List<RaftRecord> entries = [];
    private ReadOnlyMemory<byte>? metadata;
    private bool matched;
    private string? failure;

    /// <summary>Starts reading at the snapshot <paramref name="snapIndex"/>/<paramref name="snapTerm"/>.</summary>
    /// <param name="snapIndex">The snapshot's index.</param>
    /// <param name="snapTerm">The snapshot's term.</param>
    public ReadAll(ulong snapIndex, ulong snapTerm)
    {
        this.snapIndex = snapIndex;
        this.snapTerm = snapTerm;
    }

    /// <summary>How many records were read.</summary>
    public int Records { get; private set; }

    /// <summary>The last hard state read (all zero when none).</summary>
    public RaftRecord HardState { get; private set; } = RaftRecord.OfHardState(0, 0, 0);

    /// <summary>The metadata read (empty when none).</summary>
    public ReadOnlyMemory<byte> Metadata => metadata ?? ReadOnlyMemory<byte>.Empty;

    /// <summary>The entries after the snapshot, overwrites applied.</summary>
    public IReadOnlyList<RaftRecord> Entries => entries;

    /// <summary>
    /// <c>null</c> when the marker asked for was read; <c>SnapshotNotFound</c> (the contents stand)
    /// when it was not; or the failure (<c>SliceOutOfRange</c>, <c>MetadataConflict</c>,
    /// <c>SnapshotMismatch</c>), whose contents are empty.
    /// </summary>
    public string? Error => failure ?? (matched ? null : "SnapshotNotFound");

    /// <summary>Whether ReadAll failed, so its contents are empty.</summary>
    public bool Failed => failure is not null;

    /// <summary>Applies the next record.</summary>
    /// <param name="record">The record, in the order written.</param>
    public void Add(in RaftRecord record)
    {
        Records++;

        if (failure is not null)
        {
            return;
        }

        switch (record.Kind)
        {
            case RecordKind.Entry when record.Index > snapIndex:
                var up = record.Index - snapIndex - 1;

                if (up > (ulong)entries.Count)
                {
                    Fail("SliceOutOfRange");
                    return;
                }

                entries.RemoveRange((int)up, entries.Count - (int)up);
                entries.Add(record);
                break;
            case RecordKind.Entry:
                break;
            case RecordKind.HardState:
                HardState = record;
                break;
            case RecordKind.Metadata:
                if (metadata is { } previous && !previous.Span.SequenceEqual(record.Data.Span))
                {
                    Fail("MetadataConflict");
                    return;
                }

                // etcd reads empty metadata as nil, which later metadata is not compared with.
                metadata = record.Data.IsEmpty ? null : record.Data;
                break;
            case RecordKind.Snapshot when record.Index == snapIndex:
                if (record.Term != snapTerm)
                {
                    Fail("SnapshotMismatch");
                    return;
                }

                matched = true;
                break;
            case RecordKind.Snapshot:
                break;
        }
    }

    private void Fail(string kind)
    {
        failure = kind;
        entries.Clear();
        metadata = null;
        HardState = RaftRecord.OfHardState(0, 0, 0);
    }
}
