using Wal.Format;
using Wal.Storage;

namespace Wal.Engine;

/// <summary>
/// Keeps the next segment file created, locked and preallocated ahead of time, as etcd's
/// file_pipeline.go does, so a cut renames a ready file instead of waiting on fallocate.
/// Files are named "0.tmp" and "1.tmp" in turn, so the one being prepared is never the one
/// just handed out.
/// </summary>
internal sealed class FilePipeline : IDisposable
{
    private readonly IFileSystem _fs;
    private readonly string _dir;
    private readonly long _size;
    private readonly bool _background;
    private readonly bool _zeroFill;
    private readonly int _zeroAhead;
    private int _count;
    private Task<PreparedFile> _next;

    /// <summary>
    /// Starts preparing the first file. Its head is zeroed for zero-ahead (see <see cref="Take"/>)
    /// while nothing is known of the Saves: raft's are mostly small, and a log of large ones pays
    /// one zero-ahead once.
    /// </summary>
    public FilePipeline(string dir, WalOptions options)
    {
        _fs = options.FileSystem;
        _dir = dir;
        _size = options.SegmentSizeBytes;
        _background = options.PrepareSegmentsInBackground;
        _zeroFill = options.ZeroFillSegments;
        _zeroAhead = options.ZeroAheadBytes;
        _next = Prepare(zeroHead: true);
    }

    /// <summary>A prepared file: its temporary path, the open file, and how far its space is written (zeros, synced).</summary>
    public sealed record PreparedFile(string Path, IStorageFile File, long ZeroedTo);

    /// <summary>
    /// Hands out the prepared file and starts preparing the next. With <paramref name="zeroHead"/>
    /// (the Saves are small enough for zero-ahead, <see cref="WalOptions.ZeroAheadBytes"/>) the
    /// next file's first zero-ahead is written and synced while it waits, so the cut that takes
    /// it does not write it on the Save's path. Rethrows a failure to prepare (for example ENOSPC).
    /// </summary>
    public PreparedFile Take(bool zeroHead)
    {
        var file = _next.GetAwaiter().GetResult();
        _next = Prepare(zeroHead);
        return file;
    }

    private Task<PreparedFile> Prepare(bool zeroHead)
    {
        if (_background)
            return Task.Run(() => Allocate(zeroHead));
        try
        {
            return Task.FromResult(Allocate(zeroHead));
        }
        catch (Exception ex)
        {
            return Task.FromException<PreparedFile>(ex);
        }
    }

    private PreparedFile Allocate(bool zeroHead)
    {
        string path = Path.Combine(_dir, $"{_count % 2}{Layout.TempExtension}");
        // Truncate: a .tmp left by a crash may hold old records, which must not follow the
        // records of the segment this file becomes.
        var file = _fs.OpenFile(path, OpenMode.CreateTruncate);
        long zeroedTo = 0;
        try
        {
            if (!file.TryLock())
                throw new WalException(WalErrorKind.Locked, $"{path} is locked by another process.");
            file.Preallocate(_size);
            if (_zeroFill)
                zeroedTo = _size;
            else if (zeroHead)
                zeroedTo = Math.Min(_size, _zeroAhead);
            ZeroFill.Range(file, 0, zeroedTo);
        }
        catch
        {
            file.Dispose();
            throw;
        }
        _count++;
        return new PreparedFile(path, file, zeroedTo);
    }

    /// <summary>Closes and removes the file prepared but not taken.</summary>
    public void Dispose()
    {
        try
        {
            var file = _next.GetAwaiter().GetResult();
            file.File.Dispose();
            _fs.RemoveFile(file.Path);
        }
        catch (Exception)
        {
            // A file that failed to be prepared has nothing to clean up, and a leftover .tmp
            // is ignored and truncated by the next writer.
        }
    }
}
