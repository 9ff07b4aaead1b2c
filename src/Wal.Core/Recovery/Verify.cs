using Wal.Engine;
using Wal.Format;

namespace Wal.Recovery;

/// <summary>
/// Read-only checks of a WAL directory (etcd's Verify and ValidSnapshotEntries). Both open
/// the segments without a lock, so they can run beside a writer, and both accept a torn last
/// record, which a writer may be in the middle of.
/// </summary>
internal static class Verifier
{
    public static HardState Verify(string dir, Snapshot snapshot, WalOptions options)
    {
        var fs = options.FileSystem;
        var chosen = SegmentDirectory.SelectFrom(SegmentDirectory.ReadSegments(fs, dir), snapshot.Index, dir);
        var files = SegmentDirectory.Open(fs, dir, chosen, write: false);
        try
        {
            var decoder = new Decoder(files, [.. chosen.Select(s => s.FileName)]);
            byte[]? metadata = null;
            var state = HardState.Empty;
            bool match = false;
            DecodeStatus status;
            while ((status = decoder.Next()) == DecodeStatus.Record)
            {
                switch ((RecordType)decoder.RecordType)
                {
                    case RecordType.Metadata:
                        metadata = ReadRules.AcceptMetadata(decoder, metadata);
                        break;
                    case RecordType.Crc:
                        ReadRules.AcceptCrc(decoder);
                        break;
                    case RecordType.Snapshot:
                        match |= ReadRules.MatchSnapshot(decoder, snapshot);
                        break;
                    case RecordType.State:
                        state = ReadRules.DecodeState(decoder);
                        break;
                    case RecordType.Entry:
                        break;
                    default:
                        throw ReadRules.UnknownType(decoder);
                }
            }
            if (status is not (DecodeStatus.End or DecodeStatus.UnexpectedEof))
                throw ReadRules.StatusError(status, decoder);
            if (!match)
                throw new WalException(WalErrorKind.SnapshotNotFound, $"The WAL holds no snapshot record at index {snapshot.Index}, term {snapshot.Term}.");
            return state;
        }
        finally
        {
            foreach (var f in files)
                f.Dispose();
        }
    }

    public static IReadOnlyList<Snapshot> ValidSnapshotEntries(string dir, WalOptions options)
    {
        var fs = options.FileSystem;
        var segments = SegmentDirectory.ReadSegments(fs, dir);
        var files = SegmentDirectory.Open(fs, dir, segments, write: false);
        try
        {
            var decoder = new Decoder(files, [.. segments.Select(s => s.FileName)]);
            var snapshots = new List<Snapshot>();
            var state = HardState.Empty;
            DecodeStatus status;
            while ((status = decoder.Next()) == DecodeStatus.Record)
            {
                switch ((RecordType)decoder.RecordType)
                {
                    case RecordType.Snapshot:
                        snapshots.Add(ReadRules.DecodeSnapshot(decoder));
                        break;
                    case RecordType.State:
                        state = ReadRules.DecodeState(decoder);
                        break;
                    case RecordType.Crc:
                        ReadRules.AcceptCrc(decoder);
                        break;
                }
            }
            if (status is not (DecodeStatus.End or DecodeStatus.UnexpectedEof))
                throw ReadRules.StatusError(status, decoder);
            // A snapshot past the commit index may never have been applied; it is no place to start.
            return snapshots.Where(s => s.Index <= state.Commit).ToList();
        }
        finally
        {
            foreach (var f in files)
                f.Dispose();
        }
    }
}
