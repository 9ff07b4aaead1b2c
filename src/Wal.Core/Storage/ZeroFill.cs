namespace Wal.Storage;

/// <summary>
/// Writes zeros over a file's preallocated space and syncs them (<see cref="WalOptions.ZeroFillSegments"/>),
/// so that the log's later fdatasyncs find written extents and commit nothing but data.
/// </summary>
internal static class ZeroFill
{
    private const int PieceBytes = 1 << 20;

    // One megabyte of zeros, shared by every fill and never written to.
    private static readonly Lazy<byte[]> Zeros = new(() => new byte[PieceBytes]);

    /// <summary>Writes zeros over [<paramref name="from"/>, <paramref name="to"/>) of <paramref name="file"/>, then fdatasyncs it.</summary>
    /// <exception cref="IOException">As the file's Write and DataSync.</exception>
    public static void Range(IStorageFile file, long from, long to)
    {
        if (to <= from)
            return;
        Write(file, from, to);
        // Synced here, off the Save path: otherwise the first fdatasync after the segment is
        // taken would write back the whole fill.
        file.DataSync();
    }

    /// <summary>Writes zeros over [<paramref name="from"/>, <paramref name="to"/>) of <paramref name="file"/>, leaving the sync to the caller.</summary>
    /// <exception cref="IOException">As the file's Write.</exception>
    public static void Write(IStorageFile file, long from, long to)
    {
        var zeros = Zeros.Value;
        for (long offset = from; offset < to; offset += PieceBytes)
            file.Write(offset, zeros.AsSpan(0, (int)Math.Min(PieceBytes, to - offset)));
        WalMetrics.ZeroesWritten(to - from);
    }
}
