using Wal.Storage;

namespace Wal.Reading;

/// <summary>
/// The CRC chain of a large log checked on another core while the reading thread replays the
/// same records without computing it. The replay's result stands only when this check read
/// every record to a clean end at the very place the replay ended (<see cref="Confirms"/>);
/// any other outcome (a CRC that does not match, a broken chain, a torn tail, files that
/// changed between the two readings, a replay that failed) is thrown away and the log read
/// again by one reader that checks as it goes, so every verdict, error and message is the one
/// a single checked pass gives. A torn or damaged log is thus read twice; a sound one, the
/// common case, costs its replay without the CRC.
/// </summary>
/// <remarks>
/// RaftLog.Open uses it (<c>wal-bench open-log</c> on 1M x 100 B, 128 MB: 47-52 ms before,
/// 36-44 ms after). ReadAll does not: its second core pays for the result's page faults
/// (<see cref="ChunkFeed"/>), which measured faster than this check (58-63 ms against 82-86 ms
/// for the check alone, 66-96 ms for both on two cores).
/// </remarks>
internal sealed class ChainCheck : IDisposable
{
    private readonly SegmentReader _reader;
    private readonly Thread _worker;
    private volatile bool _stopped;
    private ReadStatus _status = ReadStatus.Corrupt;
    private bool _failed;

    private ChainCheck(SegmentReader reader)
    {
        _reader = reader;
        _worker = new Thread(Run) { IsBackground = true, Name = "wal chain check" };
        _worker.Start();
    }

    /// <summary>
    /// Starts checking the chain of <paramref name="files"/> on another thread, or returns null
    /// where that would not pay (one core, fewer than <paramref name="minBytes"/> in the sealed segments) or might not be safe: files
    /// of a file system plugged in through <see cref="IFileSystem"/> (the simulated disk among
    /// them) are read by one thread at a time, as they always were; the operating system's files
    /// take positioned reads from any number.
    /// </summary>
    /// <param name="files">The segments, in order, as the replay reads them.</param>
    /// <param name="names">Their file names.</param>
    /// <param name="mapped">How many of them, from the first, may be read mapped (as the replay's reader).</param>
    /// <param name="lent">Mappings of the files their owner lends (see <see cref="SegmentReader"/>), if any.</param>
    /// <param name="minBytes">The least a log's sealed segments hold for the check to start (<see cref="WalOptions.SplitOpenBytes"/>).</param>
    public static ChainCheck? Start(IReadOnlyList<IStorageFile> files, IReadOnlyList<string> names, int mapped, IReadOnlyList<FileMapping?>? lent,
        long minBytes)
    {
        if (Environment.ProcessorCount < 2 || files.Any(f => f is not IMappableFile) || SegmentDirectory.SealedBytes(files) < minBytes)
            return null;
        var reader = new SegmentReader(files, names, checkCrc: true, mapped: mapped, lent: lent);
        try
        {
            return new ChainCheck(reader);
        }
        catch (Exception ex) when (ex is OutOfMemoryException or ThreadStartException)
        {
            // No thread to be had: the replay checks the chain itself, as on one core.
            reader.Dispose();
            return null;
        }
    }

    /// <summary>The chain after the last record, once <see cref="Confirms"/> has said yes.</summary>
    public uint Crc => _reader.Crc;

    private void Run()
    {
        try
        {
            ReadStatus status;
            while ((status = _reader.Next(out _)) == ReadStatus.Record)
            {
                if (_stopped)
                    return;
            }
            _status = status;
        }
        catch (Exception)
        {
            // A read error here is the replay's to meet and report when it reads again with checks.
            _failed = true;
        }
        finally
        {
            _reader.Dispose();
        }
    }

    /// <summary>
    /// Waits for the check and says whether the unchecked replay, which ended with
    /// <paramref name="status"/> in <paramref name="replayed"/>, stands: both read to a clean
    /// end, at the same segment and offset, with every CRC and the chain between segments agreeing.
    /// </summary>
    public bool Confirms(SegmentReader replayed, ReadStatus status)
    {
        _worker.Join();
        // A check that stopped early stopped before the replay's end, so the positions alone refuse
        // it too; the statuses say what is meant.
        // Stryker disable once Equality,Logical : as above: the position test refuses what the status test does
        return !_failed && _status == ReadStatus.End && status == ReadStatus.End
            && _reader.Offset == replayed.Offset && _reader.CurrentSegment == replayed.CurrentSegment;
    }

    /// <summary>Stops the check (if it still runs) and waits for it, so no file is read after its owner closes it.</summary>
    public void Dispose()
    {
        _stopped = true;
        _worker.Join();
    }
}
