using FASTER.core;

namespace Wal.Interop.Faster;

/// <summary>
/// Raft's records in Microsoft's FasterLog (Microsoft.FASTER.Core 2.6.5), used as its README and
/// XML docs say: <c>new FasterLogSettings(dir)</c> (a local log device, <c>fasterlog.log.N</c> segment files, and
/// the default commit manager writing <c>log-commits/</c> in the same directory), <c>new FasterLog(settings)</c>,
/// which recovers from the latest commit; a scan from <c>BeginAddress</c> to <c>TailAddress</c> reads
/// what was committed; <c>Enqueue</c> appends in memory ("no guarantee of flush/commit") and
/// <c>CommitAsync</c> "completes only when we complete the commit". Pages are 16 KB (a record must
/// fit in one), segments 256 KB, so a long run spans several segment files. Per-entry checksums
/// are on, so a damaged record fails the scan rather than being read. FasterLog can truncate
/// (<c>TruncateUntil</c>), but raft's hard state and metadata sit among the entries, so
/// <c>release</c> is a no-op that answers ok.
/// </summary>
public sealed class FasterRecordStore : IRecordStore
{
    /// <inheritdoc/>
    public string Name => "FasterLog (Microsoft.FASTER.Core 2.6.5)";

    /// <inheritdoc/>
    public IRecordLog Open(string dir, RecordReader read)
    {
        Directory.CreateDirectory(dir);

        var settings = new FasterLogSettings(dir)
        {
            PageSize = 1L << 14,
            MemorySize = 1L << 16,
            SegmentSize = 1L << 18,
            LogChecksum = LogChecksumType.PerEntry,
        };

        try
        {
            var log = new FasterLog(settings);

            try
            {
                using (var iterator = log.Scan(log.BeginAddress, log.TailAddress))
                {
                    while (iterator.GetNext(out byte[] entry, out var length, out _))
                    {
                        read(entry.AsSpan(0, length));
                    }
                }

                return new FasterRecordLog(log, settings);
            }
            catch
            {
                log.Dispose();
                throw;
            }
        }
        catch
        {
            settings.Dispose();
            throw;
        }
    }
}
