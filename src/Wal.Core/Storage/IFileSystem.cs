namespace Wal.Storage;

/// <summary>
/// Everything the log does to a disk goes through this interface, so that tests can put a
/// simulated, crash-injecting file system under the same engine. Errors are
/// <see cref="IOException"/>s (<see cref="FileNotFoundException"/> and
/// <see cref="DirectoryNotFoundException"/> where a path is missing).
/// </summary>
public interface IFileSystem
{
    /// <summary>Opens or creates a file.</summary>
    /// <param name="path">The file's path.</param>
    /// <param name="mode">How to open it.</param>
    /// <returns>An open file; the caller disposes it.</returns>
    IStorageFile OpenFile(string path, OpenMode mode);

    /// <summary>Whether a regular file exists at the path.</summary>
    /// <param name="path">The path.</param>
    /// <returns>True for an existing regular file.</returns>
    bool FileExists(string path);

    /// <summary>Whether a directory exists at the path.</summary>
    /// <param name="path">The path.</param>
    /// <returns>True for an existing directory.</returns>
    bool DirectoryExists(string path);

    /// <summary>The names (not paths) of the entries of a directory, sorted ordinally.</summary>
    /// <param name="path">The directory.</param>
    /// <returns>The entry names.</returns>
    IReadOnlyList<string> ListDirectory(string path);

    /// <summary>Creates a directory and any missing parents.</summary>
    /// <param name="path">The directory.</param>
    void CreateDirectory(string path);

    /// <summary>Removes a file.</summary>
    /// <param name="path">The file.</param>
    void RemoveFile(string path);

    /// <summary>Removes a directory and everything below it.</summary>
    /// <param name="path">The directory.</param>
    void RemoveDirectoryRecursive(string path);

    /// <summary>
    /// Renames a file or directory atomically (rename(2)), replacing a file or an empty
    /// directory at the target. The change is durable only after <see cref="SyncDirectory"/>
    /// of the parent directory.
    /// </summary>
    /// <param name="from">The current path.</param>
    /// <param name="to">The new path.</param>
    void Rename(string from, string to);

    /// <summary>
    /// The path with its final symbolic links followed, even to a target that does not exist
    /// yet; the path itself when it is not a link. File systems without links return the path.
    /// </summary>
    /// <param name="path">A full path.</param>
    /// <returns>The path the links lead to.</returns>
    string ResolveLinks(string path) => path;

    /// <summary>
    /// Whether space preallocated in files of this directory stays unwritten extents until
    /// written, so that a write converting them makes its fdatasync commit through the journal,
    /// and writing zeros ahead of the log (<see cref="WalOptions.ZeroAheadBytes"/>) spares later
    /// fdatasyncs that commit. File systems that cannot tell return true.
    /// </summary>
    /// <param name="directory">An existing directory.</param>
    /// <returns>True where zero-ahead pays.</returns>
    bool ConvertsPreallocatedSpace(string directory) => true;

    /// <summary>Makes a directory's entries (creates, renames, removes) durable: fsync on the directory.</summary>
    /// <param name="path">The directory.</param>
    void SyncDirectory(string path);
}
