using Wal.Format;
using Wal.Storage;

namespace Wal.Reading;

/// <summary>Finding, choosing and opening the segments of a WAL directory (etcd's util.go).</summary>
internal static class SegmentDirectory
{
    /// <summary>The full path of a WAL directory, refusing what cannot be one (empty, NUL, the root).</summary>
    public static string FullPath(string dir)
    {
        if (string.IsNullOrWhiteSpace(dir))
            throw WalException.InvalidArgument("The WAL directory must be a non-empty path.");
        if (dir.Contains('\0'))
            throw WalException.InvalidArgument("The WAL directory must not contain a NUL character.");
        return Path.TrimEndingDirectorySeparator(Path.GetFullPath(dir)) is { Length: > 0 } full && full != "/"
            ? full
            : throw WalException.InvalidArgument("The WAL directory must not be the root directory.");
    }

    /// <summary>
    /// The directory's segments in sequence order. Files that are not segments (the
    /// pipeline's .tmp files, a Repair's .broken copy, anything foreign) are left alone.
    /// </summary>
    public static List<SegmentFile> ReadSegments(IFileSystem fs, string dir)
    {
        IReadOnlyList<string> names;
        try
        {
            names = fs.ListDirectory(dir);
        }
        catch (IOException ex)
        {
            throw new WalException(WalErrorKind.FileNotFound, $"WAL directory {dir} cannot be read: {ex.Message}", ex);
        }
        catch (UnauthorizedAccessException ex)
        {
            throw new WalException(WalErrorKind.FileNotFound, $"WAL directory {dir} cannot be read: {ex.Message}", ex);
        }
        var segments = new List<SegmentFile>();
        foreach (var fileName in names)
        {
            if (SegmentName.TryParse(fileName, out var name))
                segments.Add(new SegmentFile(fileName, name));
        }
        if (segments.Count == 0)
            throw new WalException(WalErrorKind.FileNotFound, $"WAL directory {dir} holds no segment files (*.wal).");
        segments.Sort((a, b) => a.Name.Sequence.CompareTo(b.Name.Sequence));
        return segments;
    }

    /// <summary>
    /// The segments a reader opened at <paramref name="snapshotIndex"/> needs: from the last
    /// one whose first index is at or below the snapshot, to the end, with no gap in their
    /// sequence numbers.
    /// </summary>
    public static List<SegmentFile> SelectFrom(List<SegmentFile> segments, ulong snapshotIndex, string dir)
    {
        int start = -1;
        for (int i = segments.Count - 1; i >= 0; i--)
        {
            if (segments[i].Name.Index <= snapshotIndex)
            {
                start = i;
                break;
            }
        }
        if (start < 0)
            throw new WalException(WalErrorKind.FileNotFound,
                $"WAL directory {dir} has no segment that covers index {snapshotIndex} (the first starts at {segments[0].Name.Index}).");
        var chosen = segments.GetRange(start, segments.Count - start);
        for (int i = 1; i < chosen.Count; i++)
        {
            if (chosen[i].Name.Sequence != chosen[i - 1].Name.Sequence + 1)
                throw new WalException(WalErrorKind.FileNotFound,
                    $"WAL directory {dir} is missing a segment between {chosen[i - 1].FileName} and {chosen[i].FileName}.");
        }
        return chosen;
    }

    /// <summary>
    /// The bytes of every segment of <paramref name="files"/> but the last: a log's tail is
    /// preallocated, and its length says nothing of how much it holds. Below a few MiB of them
    /// a log reads in a few milliseconds, and a second thread costs more than it saves.
    /// </summary>
    public static long SealedBytes(IReadOnlyList<IStorageFile> files)
    {
        long bytes = 0;
        for (int i = 0; i < files.Count - 1; i++)
            bytes += files[i].Length;
        return bytes;
    }

    /// <summary>Opens the chosen segments; for writing, each is opened read-write and locked, as etcd does.</summary>
    public static List<IStorageFile> Open(IFileSystem fs, string dir, List<SegmentFile> segments, bool write)
    {
        var files = new List<IStorageFile>(segments.Count);
        try
        {
            foreach (var segment in segments)
            {
                string path = Path.Combine(dir, segment.FileName);
                var file = fs.OpenFile(path, write ? OpenMode.ReadWrite : OpenMode.Read);
                files.Add(file);
                if (write && !file.TryLock())
                    throw new WalException(WalErrorKind.Locked, $"{path} is locked: another writer has this WAL open.");
            }
            return files;
        }
        catch (Exception ex)
        {
            foreach (var f in files)
                f.Dispose();
            if (ex is WalException)
                throw;
            if (ex is FileNotFoundException)
                throw new WalException(WalErrorKind.FileNotFound, ex.Message, ex);
            // A FIFO, device, link or directory where a segment should be is NotRegularFile (Io's rule).
            throw WalException.Io($"opening the segments of {dir}", ex);
        }
    }
}
