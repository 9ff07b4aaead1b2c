using System.Runtime.InteropServices;

namespace Wal.Interop;

/// <summary>
/// fsync on every directory of a log's tree and on its parent: what neither FasterLog nor
/// DotNext does after creating, renaming or deleting files. The drivers' <c>--sync-directories</c>
/// switch adds it after every commit, as a user's workaround, so that crash-test can look past
/// lost directory entries at what each library's commit itself promises.
/// </summary>
public static partial class DirectorySync
{
    private const int ReadOnly = 0x0;
    private const int Directory = 0x10000;
    private const int CloseOnExec = 0x80000;

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static partial int Fsync(int fd);

    [LibraryImport("libc", EntryPoint = "close")]
    private static partial int Close(int fd);

    /// <summary>Makes the entries of <paramref name="dir"/>, of every directory below it, and of its parent durable.</summary>
    /// <param name="dir">The log's directory.</param>
    public static void Tree(string dir)
    {
        foreach (var sub in System.IO.Directory.EnumerateDirectories(dir, "*", SearchOption.AllDirectories))
        {
            One(sub);
        }

        One(dir);
        One(Path.GetDirectoryName(Path.GetFullPath(dir)) ?? "/");
    }

    private static void One(string path)
    {
        int fd = Open(path, ReadOnly | Directory | CloseOnExec);
        if (fd < 0)
        {
            throw new IOException($"open {path}: errno {Marshal.GetLastPInvokeError()}");
        }

        try
        {
            if (Fsync(fd) != 0)
            {
                throw new IOException($"fsync {path}: errno {Marshal.GetLastPInvokeError()}");
            }
        }
        finally
        {
            Close(fd);
        }
    }
}
