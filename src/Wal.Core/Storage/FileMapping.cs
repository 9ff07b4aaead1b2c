using System.Runtime.InteropServices;

namespace Wal.Storage;

/// <summary>
/// A file's bytes [0, <see cref="Length"/>) mapped read-only and shared (mmap with PROT_READ,
/// MAP_SHARED), so reading them is a memory access instead of a system call; bytes written
/// with pwrite are visible through it at once, as the page cache is one. Touching a mapped page
/// wholly past the file's current end raises SIGBUS, which ends the process: a reader must
/// keep to bytes it knows the file holds, however long the mapping is. Unmapped by
/// <see cref="Dispose"/>, which the one owner calls once no reader is left inside.
/// </summary>
internal sealed unsafe class FileMapping : IDisposable
{
    private byte* _address;

    private FileMapping(byte* address, long length)
    {
        _address = address;
        Length = length;
    }

    /// <summary>How many bytes are mapped: the file's length when it was mapped.</summary>
    public long Length { get; }

    /// <summary>
    /// Maps the first <paramref name="length"/> bytes of the open file <paramref name="fd"/>;
    /// null when the kernel refuses (the file system cannot map, or address space ran out), so
    /// the caller reads with system calls instead.
    /// </summary>
    public static FileMapping? TryMap(int fd, long length)
    {
        if (length <= 0 || (ulong)length > nuint.MaxValue)
            return null;
        nint address = Libc.Mmap(0, (nuint)length, Libc.PROT_READ, Libc.MAP_SHARED, fd, 0);
        return address == Libc.MAP_FAILED ? null : new FileMapping((byte*)address, length);
    }

    /// <summary>
    /// The mapped bytes [<paramref name="offset"/>, <paramref name="offset"/> + <paramref name="count"/>),
    /// which must lie inside the mapping. Valid until <see cref="Dispose"/>.
    /// </summary>
    public ReadOnlySpan<byte> Bytes(long offset, int count) => new(_address + offset, count);

    /// <summary>Unmaps the file; a second call does nothing.</summary>
    public void Dispose()
    {
        byte* address = _address;
        _address = null;
        if (address is not null)
            Libc.Munmap((nint)address, (nuint)Length);
    }
}
