using Wal.Engine;
using Wal.Format;
using Wal.Storage;

namespace Wal.Recovery;

/// <summary>
/// etcd's repair.go: a crash can only tear the end of the last segment, so only that segment
/// is repaired, and only when its damage is a torn record. Anything else (a CRC mismatch in
/// whole sectors, an undecodable record) is corruption, which repair refuses to hide.
/// </summary>
internal static class Repairer
{
    public static RepairOutcome Repair(string dir, WalOptions options)
    {
        try
        {
            return RepairLast(dir, options);
        }
        catch (Exception ex) when (ex is not WalException)
        {
            throw WalException.Io($"repairing {dir}", ex);
        }
    }

    private static RepairOutcome RepairLast(string dir, WalOptions options)
    {
        var fs = options.FileSystem;
        var last = SegmentDirectory.ReadSegments(fs, dir)[^1];
        string path = Path.Combine(dir, last.FileName);
        var files = SegmentDirectory.Open(fs, dir, [last], write: true);
        using var file = files[0];
        var decoder = new Decoder(files, [last.FileName]);
        while (true)
        {
            long lastOffset = decoder.LastValidOffset;
            var status = decoder.Next();
            switch (status)
            {
                case DecodeStatus.Record:
                    if (decoder.RecordType == (long)RecordType.Crc)
                        ReadRules.AcceptCrc(decoder);
                    continue;
                case DecodeStatus.End:
                    return RepairOutcome.NothingToRepair;
                case DecodeStatus.UnexpectedEof:
                    try
                    {
                        CopyToBroken(fs, file, path + ".broken");
                        file.Truncate(lastOffset);
                        file.Sync();
                    }
                    catch (Exception ex)
                    {
                        throw WalException.Io($"repairing {path}", ex);
                    }
                    return RepairOutcome.Repaired;
                default:
                    throw ReadRules.StatusError(status, decoder);
            }
        }
    }

    private static void CopyToBroken(IFileSystem fs, IStorageFile source, string brokenPath)
    {
        using var broken = fs.OpenFile(brokenPath, OpenMode.CreateTruncate);
        var buffer = new byte[1 << 20];
        long offset = 0;
        int n;
        while ((n = source.Read(offset, buffer)) > 0)
        {
            broken.Write(offset, buffer.AsSpan(0, n));
            offset += n;
        }
        broken.Sync();
    }
}
