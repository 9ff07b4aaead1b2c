namespace Wal.Storage;

/// <summary>How <see cref="IFileSystem.OpenFile"/> opens a file.</summary>
public enum OpenMode
{
    /// <summary>Open an existing file for reading only.</summary>
    Read,

    /// <summary>Open an existing file for reading and writing.</summary>
    ReadWrite,

    /// <summary>Create the file, or truncate it to zero length if it exists, for reading and writing.</summary>
    CreateTruncate,
}

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

    /// <summary>Makes a directory's entries (creates, renames, removes) durable: fsync on the directory.</summary>
    /// <param name="path">The directory.</param>
    void SyncDirectory(string path);
}

/// <summary>An open file, addressed by offset.</summary>
public interface IStorageFile : IDisposable
{
    /// <summary>The file's current length in bytes.</summary>
    long Length { get; }

    /// <summary>Reads up to <paramref name="buffer"/>'s length bytes at an offset.</summary>
    /// <param name="offset">The file offset.</param>
    /// <param name="buffer">Where the bytes go.</param>
    /// <returns>How many bytes were read; fewer than asked only at the end of the file.</returns>
    int Read(long offset, Span<byte> buffer);

    /// <summary>Writes all of <paramref name="data"/> at an offset (pwrite); not durable until <see cref="DataSync"/>.</summary>
    /// <param name="offset">The file offset.</param>
    /// <param name="data">The bytes.</param>
    void Write(long offset, ReadOnlySpan<byte> data);

    /// <summary>Makes the file's data and length durable (fdatasync).</summary>
    void DataSync();

    /// <summary>Makes the file's data and all its metadata durable (fsync).</summary>
    void Sync();

    /// <summary>Sets the file's length, dropping or zero-extending its end (ftruncate).</summary>
    /// <param name="length">The new length.</param>
    void Truncate(long length);

    /// <summary>Allocates blocks so the file is at least <paramref name="length"/> bytes, zero-filled (fallocate, mode 0).</summary>
    /// <param name="length">The length to reach.</param>
    void Preallocate(long length);

    /// <summary>Takes an exclusive advisory lock on the file without waiting.</summary>
    /// <returns>False when another open file holds the lock.</returns>
    bool TryLock();
}
