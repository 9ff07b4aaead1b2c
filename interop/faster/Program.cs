namespace Wal.Interop.Faster;

/// <summary>The FasterLog driver: <c>dotnet faster-driver.dll</c> serves the driver protocol on stdin/stdout.</summary>
public static class Program
{
    /// <summary>Serves until quit or the end of input.</summary>
    /// <returns>0.</returns>
    public static int Main() => ProtocolServer.Run(new FasterRecordStore());
}
