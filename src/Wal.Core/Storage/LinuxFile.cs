using Microsoft.Win32.SafeHandles;

namespace Wal.Storage;

/// <summary>A file opened by <see cref="LinuxFileSystem"/>.</summary>
internal sealed class LinuxFile(string path, SafeFileHandle handle) : IStorageFile, IMappableFile
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

    public FileMapping? TryMap() => FileMapping.TryMap(Fd, Length);

    public void Dispose() => handle.Dispose();

    public override string ToString() => path;
}
