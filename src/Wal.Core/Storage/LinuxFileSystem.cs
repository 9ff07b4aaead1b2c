using Microsoft.Win32.SafeHandles;

namespace Wal.Storage;

/// <summary>
/// The real file system, on Linux. Files are opened through libc rather than
/// <see cref="File.OpenHandle(string, FileMode, FileAccess, FileShare, FileOptions, long)"/>
/// because .NET takes its own shared flock on every open, which would make a read-only
/// reader collide with a writer's lock; etcd's readers take no lock at all.
/// </summary>
public sealed class LinuxFileSystem : IFileSystem
{
    private const int PrivateFileMode = 0b110_000_000; // 0600, as etcd's PrivateFileMode

    private LinuxFileSystem() { }

    /// <summary>The one instance.</summary>
    public static LinuxFileSystem Instance { get; } = new();

    /// <inheritdoc/>
    public IStorageFile OpenFile(string path, OpenMode mode)
    {
        int flags = Libc.O_CLOEXEC | mode switch
        {
            OpenMode.Read => Libc.O_RDONLY,
            OpenMode.ReadWrite => Libc.O_RDWR,
            OpenMode.CreateTruncate => Libc.O_RDWR | Libc.O_CREAT | Libc.O_TRUNC,
            _ => throw new ArgumentOutOfRangeException(nameof(mode)),
        };
        int fd = Libc.Open(path, flags, PrivateFileMode);
        if (fd < 0)
            throw Libc.Error("open", path);
        var file = new LinuxFile(path, new SafeFileHandle(fd, ownsHandle: true));
        if (Directory.Exists(path))
        {
            file.Dispose();
            throw new IOException($"open {path}: is a directory");
        }
        return file;
    }

    /// <inheritdoc/>
    public bool FileExists(string path) => File.Exists(path);

    /// <inheritdoc/>
    public bool DirectoryExists(string path) => Directory.Exists(path);

    /// <inheritdoc/>
    public IReadOnlyList<string> ListDirectory(string path)
    {
        var names = Directory.GetFileSystemEntries(path).Select(p => Path.GetFileName(p)).ToList();
        names.Sort(StringComparer.Ordinal);
        return names;
    }

    /// <inheritdoc/>
    public void CreateDirectory(string path)
    {
        // 0700, as etcd's PrivateDirMode.
        if (OperatingSystem.IsWindows())
            Directory.CreateDirectory(path);
        else
            Directory.CreateDirectory(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
    }

    /// <inheritdoc/>
    public void RemoveFile(string path) => File.Delete(path);

    /// <inheritdoc/>
    public void RemoveDirectoryRecursive(string path) => Directory.Delete(path, recursive: true);

    /// <inheritdoc/>
    public void Rename(string from, string to)
    {
        if (Libc.Rename(from, to) != 0)
            throw Libc.Error("rename", $"{from} -> {to}");
    }

    /// <inheritdoc/>
    public void SyncDirectory(string path)
    {
        int fd = Libc.Open(path, Libc.O_RDONLY | Libc.O_DIRECTORY | Libc.O_CLOEXEC, 0);
        if (fd < 0)
            throw Libc.Error("open", path);
        try
        {
            if (Libc.Fsync(fd) != 0)
                throw Libc.Error("fsync", path);
        }
        finally
        {
            Libc.Close(fd);
        }
    }
}

/// <summary>A file opened by <see cref="LinuxFileSystem"/>.</summary>
internal sealed class LinuxFile(string path, SafeFileHandle handle) : IStorageFile
{
    private int Fd => (int)handle.DangerousGetHandle();

    public long Length => RandomAccess.GetLength(handle);

    public int Read(long offset, Span<byte> buffer)
    {
        int total = 0;
        while (total < buffer.Length)
        {
            int n = RandomAccess.Read(handle, buffer[total..], offset + total);
            if (n == 0)
                break;
            total += n;
        }
        return total;
    }

    public void Write(long offset, ReadOnlySpan<byte> data) => RandomAccess.Write(handle, data, offset);

    public void DataSync()
    {
        if (Libc.Fdatasync(Fd) != 0)
            throw Libc.Error("fdatasync", path);
    }

    public void Sync()
    {
        if (Libc.Fsync(Fd) != 0)
            throw Libc.Error("fsync", path);
    }

    public void Truncate(long length)
    {
        if (Libc.Ftruncate(Fd, length) != 0)
            throw Libc.Error("ftruncate", path);
    }

    public void Preallocate(long length)
    {
        // fallocate rejects a zero length with EINVAL; etcd's Preallocate skips it, and so does this.
        if (length == 0)
            return;
        if (Libc.Fallocate(Fd, 0, 0, length) == 0)
            return;
        int errno = System.Runtime.InteropServices.Marshal.GetLastPInvokeError();
        // As etcd: a file system without fallocate (or one that keeps interrupting it) gets a
        // plain extension instead; blocks are then allocated as the log writes them.
        if (errno is Libc.EOPNOTSUPP or Libc.EINTR)
        {
            if (Length < length)
                Truncate(length);
            return;
        }
        throw Libc.Error("fallocate", path);
    }

    public bool TryLock()
    {
        var lk = new Libc.Flock { Type = Libc.F_WRLCK, Whence = 0, Start = 0, Len = 0 };
        if (Libc.FcntlLock(Fd, Libc.F_OFD_SETLK, ref lk) == 0)
            return true;
        int errno = System.Runtime.InteropServices.Marshal.GetLastPInvokeError();
        if (errno is Libc.EAGAIN or Libc.EACCES)
            return false;
        throw Libc.Error("fcntl(F_OFD_SETLK)", path);
    }

    public void Dispose() => handle.Dispose();

    public override string ToString() => path;
}
