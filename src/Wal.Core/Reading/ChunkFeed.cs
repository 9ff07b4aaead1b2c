namespace Wal.Reading;

/// <summary>
/// Fresh payload chunks for a large ReadAll, allocated and faulted in ahead on another core.
/// A chunk's first touch costs the kernel a page fault and a zeroed page for every 4 KiB, which
/// on a log of small entries was a third of a scan's time on the reading thread; here a worker
/// pays it while the reader decodes. The reader never waits: with no chunk ready it allocates
/// its own. What the worker allocates is bounded by the bytes the scan will read, plus the few
/// chunks it keeps ready, which are dropped unused when the scan ends.
/// </summary>
internal sealed class ChunkFeed : IDisposable
{
    // Chunks kept ready: enough to cover a burst of large payloads, few enough to waste little.
    private const int Depth = 2;
    private const int PageBytes = 4096;

    private readonly int _chunkBytes;
    private readonly Queue<byte[]> _ready = new(Depth);
    private readonly SemaphoreSlim _room = new(Depth, Depth);
    private readonly Thread _worker;
    // Chunks the worker may still make: what the scan reads bounds what it allocates.
    private long _budget;
    private volatile bool _stopped;

    private ChunkFeed(int chunkBytes, long budgetChunks)
    {
        _chunkBytes = chunkBytes;
        _budget = budgetChunks;
        _worker = new Thread(Fill) { IsBackground = true, Name = "wal chunk feed" };
        _worker.Start();
    }

    /// <summary>
    /// A feed of <paramref name="chunkBytes"/>-byte chunks for a scan of at most
    /// <paramref name="scanBytes"/> bytes, of which <paramref name="knownBytes"/> are known to
    /// hold records (the sealed segments: a log's tail is preallocated, and its length says
    /// nothing of its data); or null where one would not pay: a single core, or a scan known to
    /// need fewer than <paramref name="minChunks"/> chunks.
    /// </summary>
    public static ChunkFeed? For(int chunkBytes, long knownBytes, long scanBytes, int minChunks = 16)
    {
        long chunks = scanBytes / chunkBytes;
        if (Environment.ProcessorCount < 2 || knownBytes / chunkBytes < minChunks || chunks == 0)
            return null;
        try
        {
            return new ChunkFeed(chunkBytes, chunks);
        }
        catch (Exception ex) when (ex is OutOfMemoryException or ThreadStartException)
        {
            // No thread to be had: the store allocates every chunk itself, as on one core.
            return null;
        }
    }

    /// <summary>A faulted-in chunk if one is ready, otherwise null (the caller allocates its own).</summary>
    public byte[]? TryTake()
    {
        byte[]? chunk;
        lock (_ready)
        {
            if (!_ready.TryDequeue(out chunk))
                return null;
        }
        _room.Release();
        return chunk;
    }

    private void Fill()
    {
        try
        {
            while (!_stopped && _budget-- > 0)
            {
                _room.Wait();
                if (_stopped)
                    return;
                var chunk = GC.AllocateUninitializedArray<byte>(_chunkBytes);
                // One write a page makes the kernel map (and zero) each page here, not on the reader's core.
                for (int i = 0; i < chunk.Length; i += PageBytes)
                    chunk[i] = 0;
                lock (_ready)
                    _ready.Enqueue(chunk);
            }
        }
        catch (OutOfMemoryException)
        {
            // The reader allocates for itself, and meets the same shortage there if it is real.
        }
        catch (ObjectDisposedException)
        {
            // Stopped while waiting for room.
        }
    }

    /// <summary>Stops the worker and waits for it; chunks still queued are dropped. A second call does nothing.</summary>
    public void Dispose()
    {
        if (_stopped)
            return;
        _stopped = true;
        // Wakes a worker waiting for room; it sees the stop and ends. With room free it is not waiting.
        if (_room.CurrentCount == 0)
            _room.Release();
        _worker.Join();
        _room.Dispose();
        lock (_ready)
            _ready.Clear();
    }
}
