using Wal.Format;
using Wal.Storage;

namespace Wal.Log;

/// <summary>
/// A segment file open for reading entries, shared by the log and its readers: the log holds
/// one reference while the segment is part of it, and a reader holds one while it reads, so a
/// compaction can drop the segment while a reader is still in it and the file closes when the
/// last of them lets go (as hashicorp/raft-wal's reference-counted segments).
/// </summary>
internal sealed class LogSegment(SegmentName name, string fileName, IStorageFile file)
{
    private int _references = 1;

    /// <summary>The segment's sequence number and first index.</summary>
    public SegmentName Name { get; } = name;

    /// <summary>The file's name in the log's directory.</summary>
    public string FileName { get; } = fileName;

    /// <summary>The open file; read only between <see cref="TryAcquire"/> and <see cref="Release"/>.</summary>
    public IStorageFile File { get; } = file;

    /// <summary>Takes a reference, unless the last one is already gone (the file is closed).</summary>
    public bool TryAcquire()
    {
        int seen = Volatile.Read(ref _references);
        while (seen > 0)
        {
            int before = Interlocked.CompareExchange(ref _references, seen + 1, seen);
            if (before == seen)
                return true;
            seen = before;
        }
        return false;
    }

    /// <summary>Lets go of a reference; the last one closes the file.</summary>
    public void Release()
    {
        if (Interlocked.Decrement(ref _references) == 0)
            File.Dispose();
    }
}
