using Wal.Format;

namespace Wal;

public sealed partial class WriteAheadLog
{
    /// <summary>
    /// Reads the log from the snapshot it was opened at, with etcd's rules: entries at or below
    /// the snapshot are skipped; an entry whose index is already present replaces that entry
    /// and all after it; the last hard state wins. In write mode the log must read to its end,
    /// and whatever follows the last valid record is zeroed so new records never sit before
    /// stale ones; the log then appends. Can be called once.
    /// </summary>
    /// <returns>The metadata, the last hard state and the entries after the snapshot.</returns>
    /// <exception cref="WalException">
    /// SnapshotNotFound (with <see cref="WalException.Contents"/> set, and the log still ready to
    /// append), SnapshotMismatch, MetadataConflict, CrcMismatch, SliceOutOfRange, CorruptRecord,
    /// UnexpectedEof (write mode: a torn last record, which <see cref="Repair"/> cuts off), Io,
    /// InvalidState or Closed.
    /// </exception>
    public ReadAllResult ReadAll()
    {
        lock (_gate)
        {
            if (_mode == Mode.Closed)
                throw new WalException(WalErrorKind.Closed, "The WAL is closed.");
            if (_mode != Mode.Reading || _decoder is null)
                throw WalException.InvalidState("ReadAll can be called once, right after Open or OpenForRead.");
            bool write = _pipeline is not null;
            try
            {
                return ReadAllLocked(_decoder, write);
            }
            catch (WalException ex) when (ex.Kind != WalErrorKind.SnapshotNotFound)
            {
                _mode = Mode.Broken;
                throw;
            }
            catch (Exception ex) when (ex is not WalException)
            {
                _mode = Mode.Broken;
                throw WalException.Io($"reading the WAL in {Directory}", ex);
            }
        }
    }

    private ReadAllResult ReadAllLocked(Decoder decoder, bool write)
    {
        var entries = new List<Entry>();
        var state = HardState.Empty;
        byte[]? metadata = null;
        bool match = false;
        DecodeStatus status;
        while ((status = decoder.Next()) == DecodeStatus.Record)
        {
            var data = decoder.RecordData;
            switch ((RecordType)decoder.RecordType)
            {
                case RecordType.Entry:
                    if (!RecordCodec.TryDecodeEntry(data, out var entry))
                        throw Corrupt(decoder, "an entry record's data is not a raftpb.Entry");
                    if (entry.Index > _start.Index)
                    {
                        // Compare without forming the position, which a huge index would overflow (CVE-2020-15112).
                        ulong up = entry.Index - _start.Index - 1;
                        if (up > (ulong)entries.Count)
                            throw new WalException(WalErrorKind.SliceOutOfRange,
                                $"Entry {entry.Index} in {decoder.CurrentName} leaves a gap: only {entries.Count} entries follow snapshot index {_start.Index}.");
                        entries.RemoveRange((int)up, entries.Count - (int)up);
                        entries.Add(entry);
                    }
                    _lastIndex = entry.Index;
                    break;
                case RecordType.State:
                    if (!RecordCodec.TryDecodeHardState(data, out state))
                        throw Corrupt(decoder, "a state record's data is not a raftpb.HardState");
                    break;
                case RecordType.Metadata:
                    if (metadata is not null && !data.SequenceEqual(metadata))
                        throw new WalException(WalErrorKind.MetadataConflict,
                            $"The metadata in {decoder.CurrentName} differs from the metadata before it.");
                    // Go reads empty data as nil, which later metadata is not compared against.
                    metadata = data.IsEmpty ? null : data.ToArray();
                    break;
                case RecordType.Crc:
                    // A fresh decoder (opened past the first segment) has no chain to compare with yet.
                    if (decoder.Crc != 0 && decoder.RecordCrc != decoder.Crc)
                        throw new WalException(WalErrorKind.CrcMismatch,
                            $"{decoder.CurrentName} starts with CRC {decoder.RecordCrc:x8}, but the segment before it ended with {decoder.Crc:x8}.");
                    decoder.Crc = decoder.RecordCrc;
                    break;
                case RecordType.Snapshot:
                    if (!RecordCodec.TryDecodeSnapshot(data, out var snapshot))
                        throw Corrupt(decoder, "a snapshot record's data is not a walpb.Snapshot");
                    if (snapshot.Index == _start.Index)
                    {
                        if (snapshot.Term != _start.Term)
                            throw new WalException(WalErrorKind.SnapshotMismatch,
                                $"The WAL has a snapshot at index {snapshot.Index} with term {snapshot.Term}, not {_start.Term}.");
                        match = true;
                    }
                    break;
                default:
                    throw Corrupt(decoder, $"unknown record type {decoder.RecordType}");
            }
        }

        // A reader may stop at a torn last record: the writer may be in the middle of it.
        if (status != DecodeStatus.End && (write || status != DecodeStatus.UnexpectedEof))
            throw StatusError(status, decoder);

        if (write)
        {
            // Past a zero length word may lie the rest of a torn write. Zero it, so that records
            // appended now are not followed by stale ones a later read would trip over.
            var tail = Tail.File;
            long length = tail.Length;
            tail.Truncate(decoder.LastValidOffset);
            tail.Preallocate(length);
            _encoder = new Engine.Encoder(new Engine.PageWriter(tail, decoder.LastValidOffset), decoder.Crc);
            _mode = Mode.Appending;
        }
        else
        {
            _mode = Mode.ReadOnlyDone;
            CloseFiles();
        }
        _metadata = metadata ?? [];
        _decoder = null;
        var start = _start;
        _start = Snapshot.Zero;

        var result = new ReadAllResult(_metadata, state, entries);
        if (!match)
            throw new WalException(WalErrorKind.SnapshotNotFound,
                $"The WAL holds no snapshot record at index {start.Index}, term {start.Term}.")
            { Contents = result };
        return result;
    }

    internal static WalException StatusError(DecodeStatus status, Decoder decoder) => status switch
    {
        DecodeStatus.UnexpectedEof => new WalException(WalErrorKind.UnexpectedEof,
            $"{decoder.CurrentName} ends in a torn or truncated record at offset {decoder.LastValidOffset}; Repair can cut it off."),
        DecodeStatus.CrcMismatch => new WalException(WalErrorKind.CrcMismatch,
            $"The record at offset {decoder.LastValidOffset} of {decoder.CurrentName} fails its CRC check: the WAL is corrupt."),
        _ => Corrupt(decoder, "the record cannot be decoded"),
    };

    private static WalException Corrupt(Decoder decoder, string what) =>
        new(WalErrorKind.CorruptRecord, $"Corrupt record in {decoder.CurrentName} near offset {decoder.LastValidOffset}: {what}.");
}
