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
