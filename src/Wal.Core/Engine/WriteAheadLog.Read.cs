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
            switch ((RecordType)decoder.RecordType)
            {
                case RecordType.Entry:
                    var entry = ReadRules.DecodeEntry(decoder);
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
                    state = ReadRules.DecodeState(decoder);
                    break;
                case RecordType.Metadata:
                    metadata = ReadRules.AcceptMetadata(decoder, metadata);
                    break;
                case RecordType.Crc:
                    ReadRules.AcceptCrc(decoder);
                    break;
                case RecordType.Snapshot:
                    match |= ReadRules.MatchSnapshot(decoder, _start);
                    break;
                default:
                    throw ReadRules.UnknownType(decoder);
            }
        }

        // A reader may stop at a torn last record: the writer may be in the middle of it.
        if (status != DecodeStatus.End && (write || status != DecodeStatus.UnexpectedEof))
            throw ReadRules.StatusError(status, decoder);

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
}
