namespace Wal.Interop.Faster;

/// <summary>
/// The FasterLog driver: <c>dotnet faster-driver.dll [--sync-directories]</c> serves the driver
/// protocol on stdin/stdout.
/// </summary>
public static class Program
{
    /// <summary>Serves until quit or the end of input.</summary>
    /// <param name="args"><c>--sync-directories</c> to fsync the log's directories after every commit (a user's workaround; FasterLog does not).</param>
    /// <returns>0, or 2 for an unknown argument.</returns>
    public static int Main(string[] args)
    {
        bool syncDirectories = false;

        foreach (var arg in args)
        {
            if (arg == "--sync-directories")
            {
                syncDirectories = true;
            }
            else
            {
                Console.Error.WriteLine($"usage: faster-driver [--sync-directories] (unknown argument {arg})");
                return 2;
            }
        }

        return ProtocolServer.Run(new FasterRecordStore(), syncDirectories);
    }
}
