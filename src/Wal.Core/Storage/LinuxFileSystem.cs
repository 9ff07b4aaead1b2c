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
    /// <remarks>
    /// Only regular files are opened, and a final symbolic link is never followed: the path's
    /// type is checked before the open (so a device is never opened at all), the open uses
    /// O_NOFOLLOW and O_NONBLOCK (so a FIFO swapped in meanwhile cannot block it), and the
    /// descriptor's type is checked again after it. Anything else is a
    /// <see cref="NotRegularFileException"/>. etcd follows links and would block on a FIFO.
    /// </remarks>
    public IStorageFile OpenFile(string path, OpenMode mode)
    {
        int before = Libc.TypeOf(path);
        if (before >= 0 && before != Libc.S_IFREG)
            throw new NotRegularFileException(path, Libc.Describe(before));
        int flags = Libc.O_CLOEXEC | Libc.O_NOFOLLOW | Libc.O_NONBLOCK | mode switch
        {
            OpenMode.Read => Libc.O_RDONLY,
            OpenMode.ReadWrite => Libc.O_RDWR,
            OpenMode.CreateTruncate => Libc.O_RDWR | Libc.O_CREAT | Libc.O_TRUNC,
            _ => throw new ArgumentOutOfRangeException(nameof(mode)),
        };
        int fd = Libc.Open(path, flags, PrivateFileMode);
        if (fd < 0)
        {
            if (System.Runtime.InteropServices.Marshal.GetLastPInvokeError() == Libc.ELOOP)
                throw new NotRegularFileException(path, "a symbolic link");
            throw Libc.Error("open", path);
        }
        var file = new LinuxFile(path, new SafeFileHandle(fd, ownsHandle: true));
        int after = Libc.TypeOf(fd);
        if (after != Libc.S_IFREG)
        {
            var error = after < 0 ? Libc.Error("statx", path) : new NotRegularFileException(path, Libc.Describe(after));
            file.Dispose();
            throw error;
        }
        return file;
    }

    /// <inheritdoc/>
    public string ResolveLinks(string path)
    {
        // A dangling link resolves to where it points, so that Create makes the log there.
        var seen = 0;
        while (Libc.TypeOf(path) == 0xA000 && seen++ < 40)
        {
            var target = new FileInfo(path).LinkTarget;
            if (target is null)
                break;
            path = Path.GetFullPath(target, Path.GetDirectoryName(path) ?? "/");
        }
        return path;
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

    // ext4's and XFS's magic numbers (statfs(2)): their fallocate leaves unwritten extents. On
    // copy-on-write file systems (btrfs, ZFS) a later write never lands in the zeroed blocks, and
    // tmpfs has no journal to spare; unknown ones are left as etcd writes them.
    private const long Ext4Magic = 0xEF53;
    private const long XfsMagic = 0x58465342;

    /// <inheritdoc/>
    public bool ConvertsPreallocatedSpace(string directory)
    {
        long type = Libc.FileSystemTypeOf(directory);
        // A file system statfs cannot name is taken at the option's word.
        return type is Ext4Magic or XfsMagic || type < 0;
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
