using System.Collections;
using System.Runtime.CompilerServices;

namespace Wal.Reading;

/// <summary>
/// The entries ReadAll recovers, kept as columns rather than as an object per entry: payloads
/// copied end to end into shared chunks, one 16-byte slot per entry (where its payload lies,
/// and its type), the terms as runs, and the indexes implied (the entry at position p after
/// snapshot S has index S + 1 + p, as etcd's ReadAll places them). A log of a million small
/// entries then costs its payload and 16 bytes an entry, in a few hundred allocations, where an
/// array per payload cost twice the payload. An <see cref="Entry"/> is formed on access; its
/// data is a slice of a chunk, which it keeps alive.
/// </summary>
internal sealed class EntryStore : IReadOnlyList<Entry>
{
    /// <summary>The size of the chunks small payloads are copied into, once a store has grown.</summary>
    public const int ChunkBytes = 1 << 20;
    private const int MinChunkBytes = 4096;
    // A payload this large gets an array of its own, so a chunk's unused tail stays small.
    private const int OwnArrayBytes = 64 * 1024;
    // 8,192 slots of 16 bytes: a block goes straight to the large object heap, which the GC does not copy.
    private const int BlockShift = 13;
    private const int BlockSlots = 1 << BlockShift;

    /// <summary>Where an entry's payload lies, and its type.</summary>
    private readonly record struct Slot(int Chunk, int Start, int Length, EntryType Type);

    /// <summary>A run of entries with one term, from position <c>First</c> on.</summary>
    private readonly record struct TermRun(int First, ulong Term);

    private readonly ulong _firstIndex;
    private readonly List<byte[]> _chunks = [];
    // Fixed-size blocks of slots, so growing never copies what is there.
    private readonly List<Slot[]> _blocks = [];
    private readonly List<TermRun> _terms = [];
    // The chunk small payloads are copied into, its place in _chunks, and how much of it is used.
    private byte[]? _chunk;
    // The block the next append lands in (null after an overwrite), and the term of the last run.
    private Slot[]? _block;
    private ulong _lastTerm;
    private int _chunkNumber;
    private int _used;
    private long _stored;
    private int _count;
    // Faulted-in chunks from another core while a large log is read; null once the read is done.
    private ChunkFeed? _feed;

    /// <summary>An empty store for the entries after the snapshot at <paramref name="snapshotIndex"/>.</summary>
    /// <param name="snapshotIndex">The snapshot's index.</param>
    /// <param name="feed">Where full-size chunks come from while the store is filled, if anywhere; <see cref="EndFeed"/> lets it go.</param>
    public EntryStore(ulong snapshotIndex, ChunkFeed? feed = null)
    {
        _firstIndex = snapshotIndex + 1;
        _feed = feed;
    }

    /// <summary>Stops the chunk feed, if there is one: the store is filled.</summary>
    public void EndFeed()
    {
        _feed?.Dispose();
        _feed = null;
    }

    /// <inheritdoc/>
    public int Count => _count;

    /// <summary>
    /// Places an entry at <paramref name="position"/>, dropping every entry from there on (an
    /// overwrite), or appending when it is <see cref="Count"/>. The payload is copied.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void Place(int position, ulong term, EntryType type, ReadOnlySpan<byte> data)
    {
        if ((uint)position > (uint)_count)
            throw new ArgumentOutOfRangeException(nameof(position));
        // An append in the last term's run, as almost every entry is, leaves the runs as they are.
        if (position != _count || _terms.Count == 0 || _lastTerm != term)
            PlaceTerm(position, term);
        _count = position;

        var slot = data.IsEmpty ? new Slot(-1, 0, 0, type) : Store(data, type);
        if ((position & (BlockSlots - 1)) == 0 || _block is null)
            _block = BlockFor(position);
        _block[position & (BlockSlots - 1)] = slot;
        _count = position + 1;
    }

    private void PlaceTerm(int position, ulong term)
    {
        while (_terms.Count > 0 && _terms[^1].First >= position)
            _terms.RemoveAt(_terms.Count - 1);
        if (_terms.Count == 0 || _terms[^1].Term != term)
            _terms.Add(new TermRun(position, term));
        _lastTerm = term;
        // An overwrite may land in an earlier block.
        _block = null;
    }

    private Slot[] BlockFor(int position)
    {
        if ((position >> BlockShift) == _blocks.Count)
            _blocks.Add(new Slot[BlockSlots]);
        return _blocks[position >> BlockShift];
    }

    // An overwrite leaves the replaced payloads in their chunks: overwrites are rare, and what they
    // leave is bounded by the bytes read.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private Slot Store(ReadOnlySpan<byte> data, EntryType type)
    {
        if (data.Length >= OwnArrayBytes)
        {
            _chunks.Add(data.ToArray());
            return new Slot(_chunks.Count - 1, 0, data.Length, type);
        }
        if (_chunk is null || _chunk.Length - _used < data.Length)
        {
            // Chunks grow with what is stored, so a short log does not pay for a large chunk.
            int size = (int)Math.Clamp(_stored, MinChunkBytes, ChunkBytes);
            _chunk = (size == ChunkBytes ? _feed?.TryTake() : null)
                ?? GC.AllocateUninitializedArray<byte>(Math.Max(size, data.Length));
            _chunks.Add(_chunk);
            _chunkNumber = _chunks.Count - 1;
            _used = 0;
        }
        data.CopyTo(_chunk.AsSpan(_used));
        var slot = new Slot(_chunkNumber, _used, data.Length, type);
        _used += data.Length;
        _stored += data.Length;
        return slot;
    }

    /// <inheritdoc/>
    public Entry this[int index]
    {
        get
        {
            if ((uint)index >= (uint)_count)
                throw new ArgumentOutOfRangeException(nameof(index));
            var slot = _blocks[index >> BlockShift][index & (BlockSlots - 1)];
            var data = slot.Chunk < 0
                ? ReadOnlyMemory<byte>.Empty
                : new ReadOnlyMemory<byte>(_chunks[slot.Chunk], slot.Start, slot.Length);
            return new Entry(TermAt(index), _firstIndex + (ulong)index, slot.Type, data);
        }
    }

    private ulong TermAt(int position)
    {
        int lo = 0, hi = _terms.Count - 1;
        while (lo < hi)
        {
            int mid = (lo + hi + 1) >> 1;
            if (_terms[mid].First <= position)
                lo = mid;
            else
                hi = mid - 1;
        }
        return _terms[lo].Term;
    }

    /// <summary>The entries in order.</summary>
    public Enumerator GetEnumerator() => new(this);

    IEnumerator<Entry> IEnumerable<Entry>.GetEnumerator() => GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    /// <summary>Walks the entries without allocating.</summary>
    public struct Enumerator(EntryStore store) : IEnumerator<Entry>
    {
        private int _next;

        /// <inheritdoc/>
        public Entry Current { get; private set; }

        readonly object IEnumerator.Current => Current;

        /// <inheritdoc/>
        public bool MoveNext()
        {
            if (_next >= store._count)
                return false;
            Current = store[_next++];
            return true;
        }

        /// <inheritdoc/>
        public void Reset() => _next = 0;

        /// <inheritdoc/>
        public readonly void Dispose() { }
    }
}
