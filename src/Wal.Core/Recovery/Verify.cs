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
                var data = decoder.RecordData;
                switch ((RecordType)decoder.RecordType)
                {
                    case RecordType.Metadata:
                        if (metadata is not null && !data.SequenceEqual(metadata))
                            throw new WalException(WalErrorKind.MetadataConflict, $"The metadata in {decoder.CurrentName} differs from the metadata before it.");
                        metadata = data.IsEmpty ? null : data.ToArray();
                        break;
                    case RecordType.Crc:
                        CheckCrcRecord(decoder);
                        break;
                    case RecordType.Snapshot:
                        if (!RecordCodec.TryDecodeSnapshot(data, out var loaded))
                            throw Corrupt(decoder, "a snapshot record's data is not a walpb.Snapshot");
                        if (loaded.Index == snapshot.Index)
                        {
                            if (loaded.Term != snapshot.Term)
                                throw new WalException(WalErrorKind.SnapshotMismatch,
                                    $"The WAL has a snapshot at index {loaded.Index} with term {loaded.Term}, not {snapshot.Term}.");
                            match = true;
                        }
                        break;
                    case RecordType.State:
                        if (!RecordCodec.TryDecodeHardState(data, out state))
                            throw Corrupt(decoder, "a state record's data is not a raftpb.HardState");
                        break;
                    case RecordType.Entry:
                        break;
                    default:
                        throw Corrupt(decoder, $"unknown record type {decoder.RecordType}");
                }
            }
            if (status is not (DecodeStatus.End or DecodeStatus.UnexpectedEof))
                throw WriteAheadLog.StatusError(status, decoder);
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
                var data = decoder.RecordData;
                switch ((RecordType)decoder.RecordType)
                {
                    case RecordType.Snapshot:
                        if (!RecordCodec.TryDecodeSnapshot(data, out var loaded))
                            throw Corrupt(decoder, "a snapshot record's data is not a walpb.Snapshot");
                        snapshots.Add(loaded);
                        break;
                    case RecordType.State:
                        if (!RecordCodec.TryDecodeHardState(data, out state))
                            throw Corrupt(decoder, "a state record's data is not a raftpb.HardState");
                        break;
                    case RecordType.Crc:
                        CheckCrcRecord(decoder);
                        break;
                }
            }
            if (status is not (DecodeStatus.End or DecodeStatus.UnexpectedEof))
                throw WriteAheadLog.StatusError(status, decoder);
            // A snapshot past the commit index may never have been applied; it is no place to start.
            return snapshots.Where(s => s.Index <= state.Commit).ToList();
        }
        finally
        {
            foreach (var f in files)
                f.Dispose();
        }
    }

    private static void CheckCrcRecord(Decoder decoder)
    {
        if (decoder.Crc != 0 && decoder.RecordCrc != decoder.Crc)
            throw new WalException(WalErrorKind.CrcMismatch,
                $"{decoder.CurrentName} starts with CRC {decoder.RecordCrc:x8}, but the segment before it ended with {decoder.Crc:x8}.");
        decoder.Crc = decoder.RecordCrc;
    }

    private static WalException Corrupt(Decoder decoder, string what) =>
        new(WalErrorKind.CorruptRecord, $"Corrupt record in {decoder.CurrentName} near offset {decoder.LastValidOffset}: {what}.");
}
