using System.Runtime.InteropServices;

namespace Wal.Storage;

/// <summary>
/// The libc calls managed .NET does not offer: fdatasync, fsync of a directory, fallocate,
/// open-file-description locks (the kind etcd takes, which also conflict within one process)
/// and read-only shared mappings.
/// </summary>
internal static partial class Libc
{
    public const int O_RDONLY = 0x0;
    public const int O_RDWR = 0x2;
    public const int O_CREAT = 0x40;
    public const int O_TRUNC = 0x200;
    public const int O_NONBLOCK = 0x800;
    public const int O_DIRECTORY = 0x10000;
    public const int O_NOFOLLOW = 0x20000;
    public const int O_CLOEXEC = 0x80000;

    public const int AT_FDCWD = -100;
    public const int AT_SYMLINK_NOFOLLOW = 0x100;
    public const int AT_EMPTY_PATH = 0x1000;
    public const uint STATX_TYPE = 0x1;

    public const int S_IFMT = 0xF000;
    public const int S_IFREG = 0x8000;

    public const int EINTR = 4;
    public const int ENOENT = 2;
    public const int EACCES = 13;
    public const int EAGAIN = 11;
    public const int EOPNOTSUPP = 95;
    public const int ENOTDIR = 20;
    public const int ELOOP = 40;

    public const int F_OFD_SETLK = 37;

    public const int PROT_READ = 0x1;
    public const int MAP_SHARED = 0x1;
    public static readonly nint MAP_FAILED = -1;
    public const short F_WRLCK = 1;

    [StructLayout(LayoutKind.Sequential)]
    public struct Flock
    {
        public short Type;
        public short Whence;
        public long Start;
        public long Len;
        public int Pid;
    }

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Open(string path, int flags, int mode);

    /// <summary>
    /// struct statx, up to the fields read. Its layout is the same on every architecture, which
    /// is why statx is used rather than stat (whose layout differs between them).
    /// </summary>
    [StructLayout(LayoutKind.Explicit, Size = 256)]
    public struct Statx
    {
        [FieldOffset(0)] public uint Mask;
        [FieldOffset(28)] public ushort Mode;
    }

    /// <summary>
    /// struct statfs on 64-bit Linux: only f_type, its first word, is read; the size leaves room
    /// for the whole struct (120 bytes on x86-64 and arm64).
    /// </summary>
    [StructLayout(LayoutKind.Explicit, Size = 256)]
    public struct Statfs
    {
        [FieldOffset(0)] public long Type;
    }

    [LibraryImport("libc", EntryPoint = "statfs", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int StatfsCall(string path, out Statfs buffer);

    /// <summary>The magic number of the file system a path is on (statfs's f_type); -1 with errno set when it fails.</summary>
    public static long FileSystemTypeOf(string path) => StatfsCall(path, out var st) == 0 ? st.Type : -1;

    [LibraryImport("libc", EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int StatxCall(int dirfd, string path, int flags, uint mask, out Statx buffer);

    /// <summary>The file type bits (S_IFMT) of a path, not following a final link; -1 with errno set when it fails.</summary>
    public static int TypeOf(string path) =>
        StatxCall(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW, STATX_TYPE, out var st) == 0 ? st.Mode & S_IFMT : -1;

    /// <summary>The file type bits (S_IFMT) of an open descriptor; -1 with errno set when it fails.</summary>
    public static int TypeOf(int fd) =>
        StatxCall(fd, "", AT_EMPTY_PATH, STATX_TYPE, out var st) == 0 ? st.Mode & S_IFMT : -1;

    /// <summary>The file type bits as a noun, for messages.</summary>
    public static string Describe(int type) => type switch
    {
        0xA000 => "a symbolic link",
        0x1000 => "a FIFO",
        0x4000 => "a directory",
        0x2000 => "a character device",
        0x6000 => "a block device",
        0xC000 => "a socket",
        _ => $"a file of type 0{type >> 12:o}",
    };

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    public static partial int Close(int fd);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    public static partial int Fsync(int fd);

    [LibraryImport("libc", EntryPoint = "fdatasync", SetLastError = true)]
    public static partial int Fdatasync(int fd);

    [LibraryImport("libc", EntryPoint = "fallocate", SetLastError = true)]
    public static partial int Fallocate(int fd, int mode, long offset, long len);

    [LibraryImport("libc", EntryPoint = "ftruncate", SetLastError = true)]
    public static partial int Ftruncate(int fd, long length);

    [LibraryImport("libc", EntryPoint = "fcntl", SetLastError = true)]
    public static partial int FcntlLock(int fd, int cmd, ref Flock lk);

    [LibraryImport("libc", EntryPoint = "mmap", SetLastError = true)]
    public static partial nint Mmap(nint address, nuint length, int protection, int flags, int fd, long offset);

    [LibraryImport("libc", EntryPoint = "munmap", SetLastError = true)]
    public static partial int Munmap(nint address, nuint length);

    [LibraryImport("libc", EntryPoint = "rename", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Rename(string from, string to);

    [LibraryImport("libc", EntryPoint = "strerror")]
    private static partial IntPtr StrError(int errnum);

    public static IOException Error(string call, string path)
    {
        int errno = Marshal.GetLastPInvokeError();
        string text = Marshal.PtrToStringUTF8(StrError(errno)) ?? $"errno {errno}";
        string message = $"{call} {path}: {text}";
        return errno switch
        {
            ENOENT => new FileNotFoundException(message, path),
            ENOTDIR => new DirectoryNotFoundException(message),
            EACCES => new UnauthorizedAccessIOException(message, errno),
            _ => new IOException(message, errno),
        };
    }
}
