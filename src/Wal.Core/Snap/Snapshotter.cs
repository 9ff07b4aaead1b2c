using Wal.Storage;

namespace Wal.Snap;

/// <summary>
/// etcd's snapshot directory (member/snap) as its snap.Snapshotter keeps it: one file per
/// snapshot, named by term and index (<see cref="SnapName"/>), each a CRC-checked
/// raftpb.Snapshot. Finds the newest snapshot a node can start from, passing over broken files
/// (and renaming them *.broken, as etcd does), and saves snapshots atomically.
/// </summary>
/// <remarks>
/// Unlike etcd, a file that cannot be read for a reason outside it (permissions, an I/O error,
/// a symbolic link or a FIFO) is passed over but not renamed: it is not known to be broken.
/// etcd's SaveSnap writes the file in place; <see cref="Save"/> writes a temporary file, fsyncs
/// it, renames it and fsyncs the directory, so a crash leaves the old set or the new one.
/// </remarks>
public sealed class Snapshotter
{
    private readonly IFileSystem fs;

    /// <summary>A snapshotter over a directory, which need not exist yet.</summary>
    /// <param name="dir">The snapshot directory (etcd's member/snap).</param>
    /// <param name="options">Settings, for the file system; the real one when null.</param>
    public Snapshotter(string dir, WalOptions? options = null)
    {
        if (string.IsNullOrWhiteSpace(dir))
            throw WalException.InvalidArgument("The snapshot directory must be a non-empty path.");
        Directory = Path.TrimEndingDirectorySeparator(Path.GetFullPath(dir));
        fs = (options ?? WalOptions.Default).FileSystem
            ?? throw WalException.InvalidArgument("FileSystem must not be null.");
    }

    /// <summary>The snapshot directory's full path.</summary>
    public string Directory { get; }

    /// <summary>The names of the directory's *.snap files, newest first; none when the directory does not exist.</summary>
    /// <returns>The names, in descending ordinal order (newest term, then newest index, first).</returns>
    /// <exception cref="WalException">Io when the directory cannot be listed.</exception>
    public IReadOnlyList<string> Names()
    {
        try
        {
            if (!fs.DirectoryExists(Directory))
                return [];
            var names = fs.ListDirectory(Directory).Where(n => n.EndsWith(SnapName.Extension, StringComparison.Ordinal)).ToList();
            names.Sort(StringComparer.Ordinal);
            names.Reverse();
            return names;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw WalException.Io($"listing {Directory}", ex);
        }
    }

    /// <summary>The newest snapshot that reads back intact (etcd's Snapshotter.Load).</summary>
    /// <param name="markBroken">Whether to rename broken files *.broken, as etcd does; false leaves the directory untouched.</param>
    /// <returns>The snapshot, if any, and the files passed over.</returns>
    /// <exception cref="WalException">Io when the directory cannot be listed.</exception>
    public SnapshotSearch LoadNewest(bool markBroken = true) => Search(_ => true, markBroken);

    /// <summary>
    /// The newest intact snapshot that <paramref name="walSnapshots"/> holds, matched by index
    /// and term (etcd's Snapshotter.LoadNewestAvailable).
    /// </summary>
    /// <param name="walSnapshots">The snapshots the WAL holds, as <see cref="WalDirectory.ValidSnapshotEntries"/> gives them.</param>
    /// <param name="markBroken">Whether to rename broken files *.broken, as etcd does; false leaves the directory untouched.</param>
    /// <returns>The snapshot, if any, and the files passed over.</returns>
    /// <exception cref="WalException">Io when the directory cannot be listed.</exception>
    public SnapshotSearch LoadNewestAvailable(IEnumerable<Snapshot> walSnapshots, bool markBroken = true)
    {
        var held = walSnapshots.Select(s => (s.Index, s.Term)).ToHashSet();
        return Search(s => held.Contains((s.Index, s.Term)), markBroken);
    }

    /// <summary>
    /// The newest intact snapshot that the WAL in <paramref name="walDir"/> holds a valid
    /// snapshot record for: what etcd's server starts from.
    /// </summary>
    /// <param name="walDir">The WAL directory (etcd's member/wal).</param>
    /// <param name="markBroken">Whether to rename broken files *.broken, as etcd does; false leaves the directory untouched.</param>
    /// <returns>The snapshot, if any, and the files passed over.</returns>
    /// <exception cref="WalException">From <see cref="WalDirectory.ValidSnapshotEntries"/>, or Io when the directory cannot be listed.</exception>
    public SnapshotSearch LoadNewestAvailable(string walDir, bool markBroken = true) =>
        LoadNewestAvailable(WalDirectory.ValidSnapshotEntries(walDir, new WalOptions { FileSystem = fs }), markBroken);

    /// <summary>
    /// Writes <paramref name="snapshot"/> as the file etcd's SaveSnap writes, atomically: a
    /// temporary file, fsynced, renamed into place, then the directory fsynced. Creates the
    /// directory when it is missing.
    /// </summary>
    /// <param name="snapshot">The snapshot; its index must not be 0 (raft's empty snapshot, which etcd does not save).</param>
    /// <returns>The file's full path.</returns>
    /// <exception cref="WalException">InvalidArgument for an empty snapshot; Io when the disk fails.</exception>
    public string Save(RaftSnapshot snapshot)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        if (snapshot.Index == 0)
            throw WalException.InvalidArgument("A snapshot at index 0 is raft's empty snapshot; etcd saves none.");
        string path = Path.Combine(Directory, snapshot.FileName);
        string tmp = path + ".tmp";
        var bytes = SnapCodec.Encode(snapshot);
        try
        {
            if (!fs.DirectoryExists(Directory))
            {
                fs.CreateDirectory(Directory);
                if (Path.GetDirectoryName(Directory) is { } parent)
                    fs.SyncDirectory(parent);
            }
            using (var file = fs.OpenFile(tmp, OpenMode.CreateTruncate))
            {
                file.Write(0, bytes);
                file.Sync();
            }
            fs.Rename(tmp, path);
            fs.SyncDirectory(Directory);
            return path;
        }
        catch (Exception ex) when (ex is not WalException)
        {
            TryRemove(tmp);
            throw WalException.Io($"saving {path}", ex);
        }
    }

    /// <summary>Reads one snapshot file (etcd's snap.Read).</summary>
    /// <param name="path">The file.</param>
    /// <param name="options">Settings, for the file system; the real one when null.</param>
    /// <returns>The snapshot it holds.</returns>
    /// <exception cref="WalException">
    /// CorruptRecord (empty, or not the messages), CrcMismatch, FileNotFound, NotRegularFile or Io.
    /// </exception>
    public static RaftSnapshot Read(string path, WalOptions? options = null)
    {
        var fs = (options ?? WalOptions.Default).FileSystem;
        byte[] bytes;
        try
        {
            using var file = fs.OpenFile(path, OpenMode.Read);
            bytes = new byte[file.Length];
            int n = file.Read(0, bytes);
            if (n < bytes.Length)
                bytes = bytes[..n];
        }
        catch (FileNotFoundException ex)
        {
            throw new WalException(WalErrorKind.FileNotFound, $"{path}: no such snapshot file", ex);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw WalException.Io($"reading {path}", ex);
        }
        return SnapCodec.Decode(bytes, path);
    }

    /// <summary>etcd's loadMatching: newest first, the first intact file that matches.</summary>
    private SnapshotSearch Search(Func<RaftSnapshot, bool> matches, bool markBroken)
    {
        var skipped = new List<SkippedSnapshot>();
        foreach (var name in Names())
        {
            string path = Path.Combine(Directory, name);
            RaftSnapshot snapshot;
            try
            {
                snapshot = Read(path, new WalOptions { FileSystem = fs });
            }
            catch (WalException ex) when (ex.Kind is WalErrorKind.CorruptRecord or WalErrorKind.CrcMismatch)
            {
                skipped.Add(new SkippedSnapshot(name, SkipReason.Broken, ex.Message + (markBroken ? MarkBroken(path) : "")));
                continue;
            }
            catch (WalException ex)
            {
                skipped.Add(new SkippedSnapshot(name, SkipReason.Unreadable, ex.Message));
                continue;
            }
            if (matches(snapshot))
                return new SnapshotSearch(snapshot, skipped);
            skipped.Add(new SkippedSnapshot(name, SkipReason.NotInWal,
                $"the WAL holds no valid snapshot record at index {snapshot.Index}, term {snapshot.Term}"));
        }
        return new SnapshotSearch(null, skipped);
    }

    /// <summary>
    /// Renames a broken file *.broken, as etcd's loadSnap; a failed rename is told, not thrown,
    /// as etcd only logs it. The directory is not fsynced: a lost rename finds the file broken again.
    /// </summary>
    private string MarkBroken(string path)
    {
        try
        {
            fs.Rename(path, path + SnapName.BrokenExtension);
            return $" (renamed {Path.GetFileName(path)}{SnapName.BrokenExtension})";
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return $" (could not rename it {SnapName.BrokenExtension}: {ex.Message})";
        }
    }

    private void TryRemove(string path)
    {
        try
        {
            if (fs.FileExists(path))
                fs.RemoveFile(path);
        }
        catch (Exception)
        {
            // The save already failed (the disk may be gone); its error is the one to report.
        }
    }
}
