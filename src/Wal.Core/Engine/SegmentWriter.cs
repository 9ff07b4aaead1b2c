using Wal.Format;
using Wal.Storage;

namespace Wal.Engine;

/// <summary>
/// Owns the tail segment: its file, the page writer in front of it, the encoder and the CRC
/// chain, and what the next segment's header repeats (the metadata and the last hard state).
/// When to sync and when to cut is the log's policy; how is this class's.
/// </summary>
internal sealed class SegmentWriter : IDisposable
{
    private readonly IStorageFile _file;
    private readonly PageWriter _pages;
    private readonly Encoder _encoder;
    private readonly byte[] _metadata;
    private bool _handedOver;

    // Zero-ahead (WalOptions.ZeroAheadBytes). Space below _writtenTo holds synced records or
    // written zeros; past it, fallocate's unwritten extents, whose conversion an fdatasync must
    // commit through the journal. Zeros go only at or past the flushed offset and below _end,
    // the preallocated length, so they replace bytes that already read as zeros and never grow
    // the file. The Saves' size decides whether zeros are taken along: what Append wrote since
    // the last sync, or before that the last sync's; a segment's header records do not count.
    private readonly long _end;
    private readonly int _zeroAhead;
    private long _writtenTo;
    private long _pendingSaveBytes;
    private long _lastSaveBytes;

    private SegmentWriter(
        SegmentName name,
        IStorageFile file,
        long offset,
        uint previousCrc,
        byte[] metadata,
        HardState state,
        HardState read,
        ulong lastIndex,
        SpaceAhead space,
        byte[]? pageBuffer = null,
        byte[]? scratch = null)
    {
        Name = name;
        _end = space.End;
        _zeroAhead = space.ZeroAheadBytes;
        _writtenTo = Math.Max(offset, space.WrittenTo);
        _lastSaveBytes = space.LastSaveBytes;
        _file = file;
        _pages = new PageWriter(file, offset, pageBuffer);
        _encoder = new Encoder(_pages, previousCrc, scratch);
        _metadata = metadata;
        State = state;
        _read = read;
        LastIndex = lastIndex;
    }

    // The hard state the read before this writer ended with. etcd's writer forgets it, so a cut
    // before the first Save of a hard state starts a segment without one, and a later read that
    // starts there (an open at a snapshot past its name, or one after the segments before it are
    // removed) loses the term and vote: this writer's cuts repeat it instead.
    private readonly HardState _read;

    /// <summary>The tail segment's name.</summary>
    public SegmentName Name { get; }

    /// <summary>The chain's value after the last record appended.</summary>
    public uint Crc => _encoder.Crc;

    /// <summary>The file offset etcd's writes would have reached by now (the page writer's account of them): etcd decides a cut on this, not on what is buffered.</summary>
    public long FlushedOffset => _pages.FlushedOffset;

    /// <summary>The file offset up to which bytes have been written to the file: <see cref="FlushedOffset"/> after a flush, ahead of it or behind it between flushes.</summary>
    public long WrittenOffset => _pages.WrittenOffset;

    /// <summary>The last hard state appended since the log was opened: etcd's MustSync compares with it.</summary>
    public HardState State { get; private set; }

    /// <summary>The hard state a cut repeats at the head of the next segment: the last one appended, or before any, the one the log's read ended with.</summary>
    public HardState HeaderState => State.IsEmpty ? _read : State;

    /// <summary>The index of the last entry appended (or of a later snapshot), from which a cut names the next segment.</summary>
    public ulong LastIndex { get; private set; }

    /// <summary>The name the segment after this one gets.</summary>
    public SegmentName NextName => new(Name.Sequence + 1, LastIndex + 1);

    /// <summary>
    /// A writer for the first segment of a new log, in an empty file. Write its header with
    /// <see cref="WriteFirstHeader"/>.
    /// </summary>
    public static SegmentWriter First(IStorageFile file, byte[] metadata, SpaceAhead space) =>
        new(new SegmentName(0, 0), file, 0, 0, metadata, HardState.Empty, HardState.Empty, 0, space);

    /// <summary>
    /// A writer that appends to a segment read to <paramref name="offset"/>, its last valid
    /// record. Past a zero length word may lie the rest of a torn write: it is zeroed, so that
    /// records appended now are not followed by stale ones a later read would trip over. With
    /// <paramref name="zeroFill"/> the space after the offset is written with zeros too (<see cref="WalOptions.ZeroFillSegments"/>).
    /// </summary>
    public static SegmentWriter Resume(OpenSegment tail, long offset, uint crc, byte[] metadata, HardState read, ulong lastIndex, bool zeroFill, int zeroAheadBytes)
    {
        long length = tail.File.Length;
        tail.File.Truncate(offset);
        tail.File.Preallocate(length);
        if (zeroFill)
            ZeroFill.Range(tail.File, offset, length);
        var space = new SpaceAhead(length, zeroFill ? length : offset, zeroAheadBytes, 0);
        return new SegmentWriter(tail.Name, tail.File, offset, crc, metadata, HardState.Empty, read, lastIndex, space);
    }

    /// <summary>
    /// A writer for the segment after this sealed one, in an empty prepared file: it carries the
    /// chain on. Write its header with <see cref="WriteHeader"/>. This segment's file passes to
    /// the caller as <paramref name="sealedSegment"/>, to be held for its lock.
    /// </summary>
    public SegmentWriter Successor(IStorageFile file, SpaceAhead space, out OpenSegment sealedSegment)
    {
        // The buffers pass on with the chain: a cut allocates no buffer the sealed segment had grown.
        // So does the size of the Saves, which decides whether the new segment's header sync takes zeros along.
        space = space with { LastSaveBytes = RecentSaveBytes };
        var next = new SegmentWriter(NextName, file, 0, Crc, _metadata, State, _read, LastIndex, space, _pages.HandOverBuffer(), _encoder.Scratch);
        sealedSegment = new OpenSegment(Name, _file);
        // Stryker disable once Boolean : guards a Dispose of the sealed writer, which the engine never makes (it drops the writer)
        _handedOver = true;
        return next;
    }

    /// <summary>What a new log's first segment holds: Crc(0), the metadata and the zero snapshot.</summary>
    public void WriteFirstHeader()
    {
        WriteHeaderRecords();
        WalMetrics.Appended(0, 2);
        AppendSnapshot(Snapshot.Zero);
    }

    /// <summary>What a segment opened by a cut starts with: the chain's Crc record, the metadata, the last hard state.</summary>
    public void WriteHeader()
    {
        WriteHeaderRecords();
        var state = HeaderState;
        if (!state.IsEmpty)
            _encoder.EncodeState(state);
        WalMetrics.Appended(0, state.IsEmpty ? 2 : 3);
    }

    private void WriteHeaderRecords()
    {
        _encoder.EncodeCrc();
        _encoder.Encode(RecordType.Metadata, _metadata, default);
    }

    /// <summary>
    /// Appends <paramref name="entries"/> and then <paramref name="state"/>, unless it is empty.
    /// When <paramref name="offsets"/> is not empty, it receives where each entry's frame starts
    /// in this segment (a random-access index keeps them).
    /// </summary>
    public void Append(ReadOnlySpan<Entry> entries, in HardState state, Span<long> offsets = default)
    {
        long start = _pages.Position;
        for (int i = 0; i < entries.Length; i++)
        {
            ref readonly var entry = ref entries[i];
            if (!offsets.IsEmpty)
                offsets[i] = _pages.Position;
            _encoder.EncodeEntry(entry);
            LastIndex = entry.Index;
        }
        if (!state.IsEmpty)
        {
            _encoder.EncodeState(state);
            State = state;
        }
        WalMetrics.Appended(entries.Length, entries.Length + (state.IsEmpty ? 0 : 1));
        _pendingSaveBytes += _pages.Position - start;
    }

    /// <summary>Appends a snapshot record; the last index moves up to the snapshot's.</summary>
    public void AppendSnapshot(in Snapshot snapshot)
    {
        _encoder.Encode(RecordType.Snapshot, RecordCodec.EncodeSnapshot(snapshot), default);
        WalMetrics.Appended(0, 1);
        // Stryker disable once Equality : at equality the assignment changes nothing
        if (LastIndex < snapshot.Index)
            LastIndex = snapshot.Index;
    }

    /// <summary>Writes out everything buffered and fdatasyncs the segment.</summary>
    public void Sync()
    {
        _pages.Flush();
        long offset = _pages.FlushedOffset;
        ZeroAhead(offset);
        DataSync();
        _writtenTo = Math.Max(_writtenTo, offset);
        if (_pendingSaveBytes > 0)
        {
            _lastSaveBytes = _pendingSaveBytes;
            _pendingSaveBytes = 0;
        }
    }

    // An fdatasync whose bytes reach past the written space commits their extents' conversion
    // through the journal anyway; written zeros taken along in the same sync make the next
    // ZeroAheadBytes of space written, so the Saves that follow commit nothing but their data.
    // A Save larger than a sixteenth of that would share the commit with too few others to pay
    // for writing its space twice (bench/README.md, "Zero-ahead").
    private void ZeroAhead(long offset)
    {
        if (_zeroAhead == 0 || offset <= _writtenTo || offset >= _end)
            return;
        if (Math.Max(_pendingSaveBytes, _lastSaveBytes) * SyncsPerZeroAhead > _zeroAhead)
            return;
        long to = Math.Min(_end, offset + _zeroAhead);
        ZeroFill.Write(_file, offset, to);
        _writtenTo = to;
    }

    /// <summary>How many Saves at least a zero-ahead must serve to be written.</summary>
    internal const int SyncsPerZeroAhead = 16;

    // The last Save's bytes: those appended since the last sync, or before any, the last sync's.
    private long RecentSaveBytes => _pendingSaveBytes > 0 ? _pendingSaveBytes : _lastSaveBytes;

    /// <summary>Writes out everything buffered, without syncing: readers of the file see it from now on.</summary>
    public void Flush() => _pages.Flush();

    private void DataSync()
    {
        long started = WalMetrics.Start();
        _file.DataSync();
        WalMetrics.Synced(started);
    }

    /// <summary>
    /// Ends the segment, as a cut does: writes out what is buffered, truncates the file to its
    /// data (dropping the preallocated rest) and fdatasyncs it. Nothing is appended after.
    /// </summary>
    public void Seal()
    {
        _pages.Flush();
        _file.Truncate(_pages.FlushedOffset);
        DataSync();
    }

    /// <summary>
    /// The space after a writer's offset: the preallocated length (<see cref="End"/>), how far it
    /// is known written (<see cref="WrittenTo"/>), the zero-ahead setting, and the bytes of the
    /// last Save before this writer.
    /// </summary>
    public readonly record struct SpaceAhead(long End, long WrittenTo, int ZeroAheadBytes, long LastSaveBytes)
    {
        /// <summary>The space of a segment file that Create or the pipeline just preallocated (and zero-filled, with the option), with zero-ahead at <paramref name="zeroAheadBytes"/>.</summary>
        public static SpaceAhead Fresh(WalOptions options, int zeroAheadBytes) =>
            new(options.SegmentSizeBytes, options.ZeroFillSegments ? options.SegmentSizeBytes : 0, zeroAheadBytes, 0);
    }

    /// <summary>Closes the file, unless <see cref="Successor"/> passed it on.</summary>
    public void Dispose()
    {
        if (!_handedOver)
            _file.Dispose();
    }
}
