using DotNext.Net.Cluster.Consensus.Raft.StateMachine;

namespace Wal.Interop.DotNext;

/// <summary>
/// The DotNext driver: <c>dotnet dotnext-driver.dll [--shared-memory] [--sync-directories]</c> serves the driver protocol on
/// stdin/stdout.
/// </summary>
public static class Program
{
    /// <summary>Serves until quit or the end of input.</summary>
    /// <param name="args"><c>--shared-memory</c> for the WAL's default memory-mapped pages; <c>--sync-directories</c> to fsync the log's directories after every commit (a user's workaround; DotNext does not).</param>
    /// <returns>0, or 2 for an unknown argument.</returns>
    public static int Main(string[] args)
    {
        var memory = WriteAheadLog.MemoryManagementStrategy.PrivateMemory;
        bool syncDirectories = false;

        foreach (var arg in args)
        {
            if (arg == "--shared-memory")
            {
                memory = WriteAheadLog.MemoryManagementStrategy.SharedMemory;
            }
            else if (arg == "--sync-directories")
            {
                syncDirectories = true;
            }
            else
            {
                Console.Error.WriteLine($"usage: dotnext-driver [--shared-memory] [--sync-directories] (unknown argument {arg})");
                return 2;
            }
        }

        return ProtocolServer.Run(new DotNextRecordStore(memory), syncDirectories);
    }
}
