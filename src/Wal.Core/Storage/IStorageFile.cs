namespace Wal.Storage;

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
