using Wal.Format;
using Wal.Storage;

namespace Wal.Log;

/// <summary>
/// A segment file open for reading entries, shared by the log and its readers: the log holds
/// one reference while the segment is part of it, and a reader holds one while it reads, so a
/// compaction can drop the segment while a reader is still in it and the file closes when the
/// last of them lets go (as hashicorp/raft-wal's reference-counted segments). The segment owns
/// the file's mapping too, when it is mapped: made by the first reader that wants it and
/// unmapped with the file, so no reader is ever inside an unmapped range.
/// </summary>
internal sealed class LogSegment(SegmentName name, string fileName, IStorageFile file, bool map)
{
    private int _references = 1;
    private FileMapping? _mapping;
    private bool _mappable = map && file is IMappableFile;
    private long _end;

    /// <summary>The segment's sequence number and first index.</summary>
    public SegmentName Name { get; } = name;

    /// <summary>The file's name in the log's directory.</summary>
    public string FileName { get; } = fileName;

    /// <summary>The open file; read only between <see cref="TryAcquire"/> and <see cref="Release"/>.</summary>
    public IStorageFile File { get; } = file;

    /// <summary>
    /// Where the bytes the log knows the file holds end: past every frame the log has indexed
    /// in it. The file never gets shorter than this while the log has it open (a cut truncates
    /// a segment to all it has written; the open cuts a torn tail off before any reader comes),
    /// so mapped bytes below it are safe to touch, whatever the mapping's length.
    /// </summary>
    public long End => Volatile.Read(ref _end);

    /// <summary>Moves <see cref="End"/> up to <paramref name="end"/>; the writer's (or the opening scan's) alone, before it publishes the frames.</summary>
    public void Extend(long end)
    {
        if (end > _end)
            Volatile.Write(ref _end, end);
    }

    /// <summary>
    /// The mapped bytes from <paramref name="offset"/> up to <see cref="End"/> (or the mapping's
    /// end, or <paramref name="most"/> bytes, whichever comes first); empty when the segment is
    /// not mapped or the offset is past them. Only between <see cref="TryAcquire"/> and <see cref="Release"/>.
    /// </summary>
    public ReadOnlySpan<byte> MappedFrom(long offset, int most)
    {
        var mapping = Volatile.Read(ref _mapping) ?? Map();
        if (mapping is null)
            return default;
        long end = Math.Min(End, mapping.Length);
        if (offset < 0 || offset >= end)
            return default;
        return mapping.Bytes(offset, (int)Math.Min(end - offset, most));
    }

    /// <summary>
    /// The segment's mapping, made now if it was not yet; null when the segment is not mapped.
    /// Only while holding a reference: the last <see cref="Release"/> unmaps it. The opening scan
    /// reads through it, so the pages it faults in serve the readers after.
    /// </summary>
    public FileMapping? Mapping() => Volatile.Read(ref _mapping) ?? Map();

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

    /// <summary>Lets go of a reference; the last one unmaps and closes the file.</summary>
    public void Release()
    {
        if (Interlocked.Decrement(ref _references) != 0)
            return;
        Volatile.Write(ref _mappable, false);
        try
        {
            Interlocked.Exchange(ref _mapping, null)?.Dispose();
        }
        finally
        {
            File.Dispose();
        }
    }

    /// <summary>
    /// Maps the file on first use, by a reader holding a reference (so the last release, which
    /// unmaps, comes after). Two readers may map at once; the one that loses unmaps its own. A
    /// file that cannot be mapped is not asked again: its readers use positioned reads.
    /// </summary>
    private FileMapping? Map()
    {
        if (!Volatile.Read(ref _mappable))
            return null;
        var fresh = ((IMappableFile)File).TryMap();
        if (fresh is null)
        {
            Volatile.Write(ref _mappable, false);
            return null;
        }
        var installed = Interlocked.CompareExchange(ref _mapping, fresh, null);
        if (installed is null)
            return fresh;
        fresh.Dispose();
        return installed;
    }
}
