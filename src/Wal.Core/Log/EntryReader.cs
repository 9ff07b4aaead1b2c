using System.Buffers;
using System.Buffers.Binary;
using Wal.Format;

namespace Wal.Log;

/// <summary>
/// Reads entries at known offsets of one segment: straight from the segment's mapping when it
/// has one and the frame lies below the end the log knows, else with positioned reads through
/// a window rented from the shared pool (a run of entries is read with as few reads as its
/// bytes need). Either way nothing is allocated beyond each entry's data. The frame is checked
/// as the record loop checks it (length word, record, type, the entry's index and term); its
/// CRC was checked against the chain when the log was opened, or the log wrote it.
/// </summary>
internal struct EntryReader : IDisposable
{
    /// <summary>What a read fetches at least when the caller knows no better bound.</summary>
    public const int FirstReadBytes = 4096;
    private const int MaxReadAheadBytes = 256 * 1024;

    private byte[]? _buffer;
    private LogSegment? _segment;
    private long _offset;
    private int _count;
    private int _firstRead;

    /// <summary>
    /// Reads entry <paramref name="index"/> of term <paramref name="term"/>, whose frame starts at
    /// <paramref name="offset"/> of <paramref name="segment"/> (which the caller holds a reference
    /// to). Reading ahead stops at <paramref name="readAheadTo"/>, where the caller's last wanted
    /// frame starts. A read fetches at least <paramref name="firstReadBytes"/>: a caller who
    /// knows where the next frame starts passes the distance, so a single entry costs a read of
    /// its own bytes rather than a page (the frame is read again whole if it is longer).
    /// </summary>
    public Entry Read(LogSegment segment, long offset, ulong index, ulong term, long readAheadTo, int firstReadBytes = FirstReadBytes)
    {
        // The mapping holds the same page-cache bytes a positioned read would fetch, so the
        // verdicts are the same; a frame that does not lie whole below the known end (damage, or
        // bytes past the mapping) goes the positioned way, which tells where the file ends.
        var mapped = segment.MappedFrom(offset, Layout.FrameHeaderBytes + Layout.MaxRecordFrameBytes);
        if (mapped.Length >= Layout.FrameHeaderBytes)
        {
            var (mappedRecordBytes, mappedPadBytes) = Frame.Decode(BinaryPrimitives.ReadUInt64LittleEndian(mapped));
            if (mappedRecordBytes + (ulong)mappedPadBytes >= Layout.MaxRecordFrameBytes)
                throw Damaged(segment, offset, index, "its length word claims 10 MiB or more");
            int mappedFrameBytes = Layout.FrameHeaderBytes + (int)mappedRecordBytes;
            if (mappedFrameBytes <= mapped.Length)
                return Decode(mapped[..mappedFrameBytes], segment, offset, index, term);
        }
        _firstRead = Math.Clamp(firstReadBytes, Layout.FrameHeaderBytes, FirstReadBytes);
        if (!ReferenceEquals(segment, _segment))
        {
            _segment = segment;
            _count = 0;
        }
        var head = Window(offset, Layout.FrameHeaderBytes, readAheadTo);
        if (head.Length < Layout.FrameHeaderBytes)
            throw Damaged(segment, offset, index, "its frame runs past the end of the file");
        var (recordBytes, padBytes) = Frame.Decode(BinaryPrimitives.ReadUInt64LittleEndian(head));
        if (recordBytes + (ulong)padBytes >= Layout.MaxRecordFrameBytes)
            throw Damaged(segment, offset, index, "its length word claims 10 MiB or more");
        int frameBytes = Layout.FrameHeaderBytes + (int)recordBytes;
        var frame = Window(offset, frameBytes, readAheadTo);
        if (frame.Length < frameBytes)
            throw Damaged(segment, offset, index, "its frame runs past the end of the file");
        return Decode(frame, segment, offset, index, term);
    }

    /// <summary>The entry in <paramref name="frame"/> (its length word and record), which must be entry <paramref name="index"/> of term <paramref name="term"/>; its data copied out.</summary>
    private static Entry Decode(ReadOnlySpan<byte> frame, LogSegment segment, long offset, ulong index, ulong term)
    {
        if (RecordCodec.DecodeRecord(frame[Layout.FrameHeaderBytes..], out long type, out _, out var data) != RecordParse.Ok
            || type != (long)RecordType.Entry
            || !RecordCodec.TryParseEntry(data, out ulong readTerm, out ulong readIndex, out var entryType, out var payload))
            throw Damaged(segment, offset, index, "it is not an entry record");
        if (readIndex != index || readTerm != term)
            throw Damaged(segment, offset, index, $"it holds entry {readIndex} of term {readTerm}, not of term {term}");
        return new Entry(readTerm, readIndex, entryType, payload.IsEmpty ? ReadOnlyMemory<byte>.Empty : payload.ToArray());
    }

    /// <summary>Returns the window to the pool.</summary>
    public void Dispose()
    {
        if (_buffer is not null)
            ArrayPool<byte>.Shared.Return(_buffer);
        _buffer = null;
        _segment = null;
    }

    /// <summary>Bytes [offset, offset + count) of the segment, or fewer where the file ends.</summary>
    private ReadOnlySpan<byte> Window(long offset, int count, long readAheadTo)
    {
        if (offset >= _offset && offset + count <= _offset + _count)
            return _buffer.AsSpan((int)(offset - _offset), count);
        long ahead = Math.Clamp(readAheadTo - offset, 0, MaxReadAheadBytes);
        int want = (int)Math.Max(count, ahead + _firstRead);
        if (_buffer is null || _buffer.Length < want)
        {
            if (_buffer is not null)
                ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = ArrayPool<byte>.Shared.Rent(want);
        }
        _offset = offset;
        _count = _segment!.File.Read(offset, _buffer.AsSpan(0, Math.Min(_buffer.Length, want)));
        return _buffer.AsSpan(0, Math.Min(count, _count));
    }

    private static WalException Damaged(LogSegment segment, long offset, ulong index, string what) =>
        new(WalErrorKind.CorruptRecord, $"Entry {index} in {segment.FileName} at offset {offset} cannot be read: {what}.");
}
