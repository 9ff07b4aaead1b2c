using Wal.Format;

namespace Wal;

public sealed partial class WriteAheadLog
{
    /// <summary>
    /// Appends <paramref name="entries"/> and then <paramref name="state"/> (unless it is empty),
    /// in one write in the common case. Returns after fdatasync when etcd's MustSync rule says so:
    /// entries were given, or the term or vote changed. Once the segment passes its size, the
    /// log is cut to a new segment before this returns. An empty state with no entries writes nothing.
    /// </summary>
    /// <param name="state">The raft hard state; <see cref="HardState.Empty"/> to leave it out.</param>
    /// <param name="entries">The entries, in the order raft produced them.</param>
    /// <exception cref="WalException">RecordTooLarge or InvalidArgument (nothing written), InvalidState, Closed, Io or Failed.</exception>
    public void Save(HardState state, ReadOnlySpan<Entry> entries)
    {
        lock (_gate)
        {
            var encoder = WritableEncoder();
            if (state.IsEmpty && entries.IsEmpty)
                return;
            foreach (ref readonly var entry in entries)
            {
                int recordBytes = Engine.Encoder.RecordBytesOfEntry(entry, out _);
                if (recordBytes > _options.MaxRecordBytes)
                    throw new WalException(WalErrorKind.RecordTooLarge,
                        $"Entry {entry.Index} would be a record of {recordBytes} bytes, over the limit of {_options.MaxRecordBytes}.");
            }
            bool mustSync = state.MustSync(_state, entries.Length);
            try
            {
                foreach (ref readonly var entry in entries)
                {
                    encoder.EncodeEntry(entry);
                    _lastIndex = entry.Index;
                }
                if (!state.IsEmpty)
                {
                    encoder.EncodeState(state);
                    _state = state;
                }
                // etcd decides on the flushed offset; bytes still buffered do not count yet.
                if (encoder.Writer.FlushedOffset < _options.SegmentSizeBytes)
                {
                    if (mustSync)
                        SyncLocked(encoder);
                    return;
                }
                Cut();
            }
            catch (Exception ex)
            {
                throw FailClosed("saving entries", ex);
            }
        }
    }

    /// <summary>Appends entries and a hard state; see <see cref="Save(HardState, ReadOnlySpan{Entry})"/>.</summary>
    /// <param name="state">The raft hard state.</param>
    /// <param name="entries">The entries.</param>
    public void Save(HardState state, IEnumerable<Entry> entries)
    {
        ArgumentNullException.ThrowIfNull(entries);
        Save(state, entries is Entry[] array ? array : [.. entries]);
    }

    /// <summary>
    /// Records that a raft snapshot was taken at <paramref name="snapshot"/>, so the log can be
    /// opened there, and syncs. etcd 3.5 stores the snapshot's <see cref="ConfState"/> too.
    /// </summary>
    /// <param name="snapshot">The snapshot's index, term and membership.</param>
    /// <exception cref="WalException">InvalidState, Closed, Io or Failed.</exception>
    public void SaveSnapshot(Snapshot snapshot)
    {
        lock (_gate)
        {
            var encoder = WritableEncoder();
            byte[] data = RecordCodec.EncodeSnapshot(snapshot);
            try
            {
                encoder.Encode(RecordType.Snapshot, data, default);
                if (_lastIndex < snapshot.Index)
                    _lastIndex = snapshot.Index;
                SyncLocked(encoder);
            }
            catch (Exception ex)
            {
                throw FailClosed("saving a snapshot", ex);
            }
        }
    }

    /// <summary>Writes out everything buffered and fdatasyncs the last segment.</summary>
    /// <exception cref="WalException">InvalidState, Closed, Io or Failed.</exception>
    public void Sync()
    {
        lock (_gate)
        {
            var encoder = WritableEncoder();
            try
            {
                SyncLocked(encoder);
            }
            catch (Exception ex)
            {
                throw FailClosed("syncing", ex);
            }
        }
    }

    /// <summary>
    /// Releases (closes) the segments that hold only entries below <paramref name="index"/>,
    /// keeping the one that holds it, as etcd does once a snapshot makes them unnecessary.
    /// The last segment is never released. The files stay on disk.
    /// </summary>
    /// <param name="index">The first index still needed.</param>
    public void ReleaseLockTo(ulong index)
    {
        lock (_gate)
        {
            if (_mode is Mode.Closed)
                throw new WalException(WalErrorKind.Closed, "The WAL is closed.");
            if (_mode is not Mode.Appending)
                return;
            int keepFrom = _segments.Count - 1;
            for (int i = 0; i < _segments.Count; i++)
            {
                if (_segments[i].Name.Index >= index)
                {
                    keepFrom = i - 1;
                    break;
                }
            }
            if (keepFrom <= 0)
                return;
            for (int i = 0; i < keepFrom; i++)
                _segments[i].File.Dispose();
            _segments.RemoveRange(0, keepFrom);
        }
    }

    /// <summary>
    /// Closes the log: writes out what is buffered and fdatasyncs it (unless the log has failed),
    /// removes the prepared segment file, and releases every lock. Safe to call twice.
    /// </summary>
    /// <exception cref="WalException">Io, when the final sync fails; the files are closed all the same.</exception>
    public void Dispose()
    {
        lock (_gate)
        {
            if (_mode == Mode.Closed)
                return;
            var encoder = _mode == Mode.Appending && _failure is null ? _encoder : null;
            _mode = Mode.Closed;
            try
            {
                if (encoder is not null)
                    SyncLocked(encoder);
            }
            catch (Exception ex)
            {
                _failure = ex;
                throw WalException.Io($"syncing {Directory} on close", ex);
            }
            finally
            {
                CloseFiles();
            }
        }
    }

    private Engine.Encoder WritableEncoder()
    {
        switch (_mode)
        {
            case Mode.Closed:
                throw new WalException(WalErrorKind.Closed, "The WAL is closed.");
            case Mode.Reading when _pipeline is not null:
                throw WalException.InvalidState("Call ReadAll before appending to a WAL opened with Open.");
            case Mode.Reading or Mode.ReadOnlyDone:
                throw WalException.InvalidState("The WAL was opened with OpenForRead and cannot be written.");
            case Mode.Broken:
                throw WalException.InvalidState("ReadAll failed; close the WAL, repair or inspect it, and open it again.");
        }
        if (_failure is not null)
            throw new WalException(WalErrorKind.Failed,
                $"An earlier write to {Directory} failed ({_failure.Message}); the WAL accepts no more writes. Close and reopen it.",
                _failure);
        return _encoder!;
    }

    private WalException FailClosed(string what, Exception ex)
    {
        _failure = ex;
        return ex as WalException ?? WalException.Io($"{what} in {Directory}", ex);
    }

    private void SyncLocked(Engine.Encoder encoder)
    {
        encoder.Writer.Flush();
        Tail.File.DataSync();
    }

    /// <summary>
    /// Closes the tail segment and starts the next, as etcd's cut: the old tail is truncated
    /// to its data and synced; the prepared file receives the chain's CRC, the metadata and the
    /// last hard state, is synced, renamed into place, and the directory synced, so the new
    /// segment appears whole or not at all.
    /// </summary>
    private void Cut()
    {
        var encoder = _encoder!;
        encoder.Writer.Flush();
        var oldTail = Tail;
        oldTail.File.Truncate(encoder.Writer.FlushedOffset);
        oldTail.File.DataSync();

        var name = new SegmentName(oldTail.Name.Sequence + 1, _lastIndex + 1);
        var prepared = _pipeline!.Take();
        var segment = new OpenSegment(name, prepared.File);
        _segments.Add(segment);
        encoder = new Engine.Encoder(new Engine.PageWriter(prepared.File, 0), encoder.Crc);
        _encoder = encoder;
        encoder.EncodeCrc();
        encoder.Encode(RecordType.Metadata, _metadata, default);
        if (!_state.IsEmpty)
            encoder.EncodeState(_state);
        SyncLocked(encoder);
        _fs.Rename(prepared.Path, Path.Combine(Directory, name.ToString()));
        _fs.SyncDirectory(Directory);
    }

    private void CloseFiles()
    {
        _pipeline?.Dispose();
        _pipeline = null;
        foreach (var segment in _segments)
            segment.File.Dispose();
        _segments.Clear();
    }
}
