using Wal.Engine;
using Wal.Format;

namespace Wal.Recovery;

/// <summary>
/// Record-by-record reading of a whole WAL for tools (wal dump): every record from the first
/// segment on, its CRC checked against the chain, without applying ReadAll's rules.
/// </summary>
internal static class Scanner
{
    public static IEnumerable<WalRecord> Scan(string dir, WalOptions options)
    {
        var fs = options.FileSystem;
        var chosen = SegmentDirectory.SelectFrom(SegmentDirectory.ReadSegments(fs, dir), 0, dir);
        var files = SegmentDirectory.Open(fs, dir, chosen, write: false);
        try
        {
            var decoder = new Decoder(files, [.. chosen.Select(s => s.FileName)]);
            DecodeStatus status;
            while ((status = Next(decoder, dir)) == DecodeStatus.Record)
            {
                if (decoder.RecordType == (long)RecordType.Crc)
                    ReadRules.AcceptCrc(decoder);
                yield return new WalRecord(
                    decoder.CurrentName,
                    decoder.RecordOffset,
                    (int)(decoder.LastValidOffset - decoder.RecordOffset),
                    (RecordType)decoder.RecordType,
                    decoder.RecordCrc,
                    decoder.RecordData.ToArray());
            }
            // A torn tail is reported too: a dump shows what is there, and where it stops.
            if (status != DecodeStatus.End)
                throw ReadRules.StatusError(status, decoder);
        }
        finally
        {
            foreach (var f in files)
                f.Dispose();
        }
    }

    private static DecodeStatus Next(Decoder decoder, string dir)
    {
        try
        {
            return decoder.Next();
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw WalException.Io($"reading {decoder.CurrentName} in {dir}", ex);
        }
    }
}
