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
    private int _count;
    private Task<PreparedFile> _next;

    public FilePipeline(IFileSystem fs, string dir, long size, bool background, bool zeroFill)
    {
        _fs = fs;
        _dir = dir;
        _size = size;
        _background = background;
        _zeroFill = zeroFill;
        _next = Prepare();
    }

    public sealed record PreparedFile(string Path, IStorageFile File);

    /// <summary>Hands out the prepared file and starts preparing the next. Rethrows a failure to prepare (for example ENOSPC).</summary>
    public PreparedFile Take()
    {
        var file = _next.GetAwaiter().GetResult();
        _next = Prepare();
        return file;
    }

    private Task<PreparedFile> Prepare()
    {
        if (_background)
            return Task.Run(Allocate);
        try
        {
            return Task.FromResult(Allocate());
        }
        catch (Exception ex)
        {
            return Task.FromException<PreparedFile>(ex);
        }
    }

    private PreparedFile Allocate()
    {
        string path = Path.Combine(_dir, $"{_count % 2}{Layout.TempExtension}");
        // Truncate: a .tmp left by a crash may hold old records, which must not follow the
        // records of the segment this file becomes.
        var file = _fs.OpenFile(path, OpenMode.CreateTruncate);
        try
        {
            if (!file.TryLock())
                throw new WalException(WalErrorKind.Locked, $"{path} is locked by another process.");
            file.Preallocate(_size);
            if (_zeroFill)
                ZeroFill.Range(file, 0, _size);
        }
        catch
        {
            file.Dispose();
            throw;
        }
        _count++;
        return new PreparedFile(path, file);
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
