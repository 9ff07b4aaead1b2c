using System.Runtime.InteropServices;

namespace Wal.Storage;

/// <summary>
/// The libc calls managed .NET does not offer: fdatasync, fsync of a directory, fallocate and
/// open-file-description locks (the kind etcd takes, which also conflict within one process).
/// </summary>
internal static partial class Libc
{
    public const int O_RDONLY = 0x0;
    public const int O_RDWR = 0x2;
    public const int O_CREAT = 0x40;
    public const int O_TRUNC = 0x200;
    public const int O_DIRECTORY = 0x10000;
    public const int O_CLOEXEC = 0x80000;

    public const int EINTR = 4;
    public const int ENOENT = 2;
    public const int EACCES = 13;
    public const int EAGAIN = 11;
    public const int EOPNOTSUPP = 95;
    public const int ENOTDIR = 20;

    public const int F_OFD_SETLK = 37;
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
