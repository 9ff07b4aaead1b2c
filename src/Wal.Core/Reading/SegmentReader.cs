using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using Wal.Format;
using Wal.Storage;

namespace Wal.Reading;

/// <summary>
/// The one record loop: reads records from a run of segments in order, checking every
/// record's CRC against the chain and every segment's Crc record against the segment before.
/// Memory stays bounded: a frame is never read (or allocated) past the end of its file,
/// however large its length word claims it is. A reader over segments its caller holds
/// locked may map them instead, and decode each segment in place, without copying it.
/// </summary>
internal sealed class SegmentReader : IDisposable
{
    private const int ReadChunkBytes = 128 * 1024;
    private const int FirstChunkBytes = 8 * 1024;

    // Arrays rather than the lists handed in: the record loop reads them per record, and an
    // interface call there costs as much as decoding a small record's varints.
    private readonly IStorageFile[] _files;
    private readonly string[] _names;
    private int _fileIndex;
    private long _fileLength;
    // Starts small and doubles up to ReadChunkBytes, so reading a short log stays cheap.
    private byte[] _buffer = new byte[FirstChunkBytes];
    private long _bufferOffset;
    private int _bufferCount;

    private readonly bool _checkCrc;
    private readonly int _mapped;
    // The current segment's bytes, mapped, when the reader maps: then the window is the whole file.
    private FileMapping? _mapping;
    // Mappings another owner made of the same files and lends for the read (RaftLog's segments):
    // used instead of mapping again, and never unmapped here.
    private readonly IReadOnlyList<FileMapping?>? _lent;
    private bool _ownsMapping;

    /// <summary>A reader of <paramref name="files"/> (named <paramref name="names"/>), in order.</summary>
    /// <param name="files">The segments.</param>
    /// <param name="names">Their file names, for records and messages.</param>
    /// <param name="checkCrc">
    /// False only to read again records a reader has just checked (a survey's second pass):
    /// frames and records are still parsed and every failure reported, but no CRC is computed,
    /// and the chain (<see cref="Crc"/>) is not kept.
    /// </param>
    /// <param name="mapped">
    /// How many of the segments, from the first, to read through a read-only mapping rather than
    /// positioned reads (a file that cannot be mapped is read as before). Only segments no one
    /// shrinks while they are read: touching a mapped page past a file's end raises SIGBUS. A
    /// log's own locked segments are such, and so is every segment of a log but its last, which
    /// a cut has truncated already (<see cref="WalOptions.MapSegments"/>).
    /// </param>
    /// <param name="lent">
    /// Mappings of the same files made by their owner (null entries where there is none), which
    /// the reader uses for the segments it maps instead of mapping them again: their pages are
    /// faulted in once for every reader, and they stay after the read. The owner keeps them until
    /// the reader is disposed.
    /// </param>
    public SegmentReader(IReadOnlyList<IStorageFile> files, IReadOnlyList<string> names, bool checkCrc = true, int mapped = 0,
        IReadOnlyList<FileMapping?>? lent = null)
    {
        _files = [.. files];
        _names = [.. names];
        _checkCrc = checkCrc;
        _mapped = mapped;
        _lent = lent;
        // Stryker disable once Equality : a reader is never made over no segments (the directory read refuses that first)
        if (_files.Length > 0)
            Enter();
    }

    /// <summary>The running CRC chain: the CRC after the last record read.</summary>
    public uint Crc { get; private set; }

    /// <summary>
    /// Where the reader stands in the current segment: just past the last valid record, which
    /// is where a failing frame starts, and where a writer appends after the last segment's end.
    /// </summary>
    public long Offset { get; private set; }

    /// <summary>The name of the segment being read, for messages.</summary>
    // Stryker disable once all : past the last segment no message is made (reading ends there); the name given then is never shown
    public string CurrentSegment => _fileIndex < _names.Length ? _names[_fileIndex] : _names.Length > 0 ? _names[^1] : "";

    /// <summary>Whether the reader is in the last segment of the run.</summary>
    private bool InLastSegment => _fileIndex >= _files.Length - 1;

    /// <summary>
    /// Reads the next record, moving on to the next segment at the end of one. The record is
    /// set for <see cref="ReadStatus.Record"/> and <see cref="ReadStatus.ChainBroken"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public ReadStatus Next(out SegmentRecord record)
    {
        record = default;
        // Stryker disable once Equality : one more turn past the last segment finds its end again in the buffer it kept, and stops
        while (_fileIndex < _files.Length)
        {
            long offset = Offset;
            int available = Fill(offset, Layout.FrameHeaderBytes);
            if (available == 0)
            {
                NextFile();
                continue;
            }
            // A partial length word cannot be a clean end: the writer writes whole frames.
            if (available < Layout.FrameHeaderBytes)
                return Truncated;
            // Only the bytes that exist: past them the buffer holds an earlier read's bytes.
            ulong word = BinaryPrimitives.ReadUInt64LittleEndian(Window(offset, available));
            // A zero word is preallocated space: this segment's data ends here.
            if (word == 0)
            {
                NextFile();
                continue;
            }
            var (recordBytes, padBytes) = Frame.Decode(word);
            // etcd 3.4 refuses a record of 10 MiB or more before reading it (ErrMaxWALEntrySizeLimitExceeded).
            if (recordBytes + (ulong)padBytes >= Layout.MaxRecordFrameBytes)
                return ReadStatus.TooLarge;
            // Stryker disable once Arithmetic : loosening this check by a header's length leaves it to the second guard below, with the same verdict
            long left = _fileLength - offset - Layout.FrameHeaderBytes;
            // CVE-2020-15106: trust a length word only as far as the file goes.
            // Stryker disable once Arithmetic : as above: the second guard gives the same verdict
            if (recordBytes + (ulong)padBytes > (ulong)Math.Max(0, left))
                return Truncated;
            int frameBytes = Layout.FrameHeaderBytes + (int)recordBytes + padBytes;
            // Stryker disable once Equality : a second guard: the length was checked against the file just above
            if (Fill(offset, frameBytes) < frameBytes)
                return Truncated;
            var body = Window(offset + Layout.FrameHeaderBytes, (int)recordBytes + padBytes);
            var parse = RecordCodec.DecodeRecord(body[..(int)recordBytes], out long wireType, out uint crc, out var data);
            if (parse != RecordParse.Ok)
            {
                if (IsTorn(body))
                    return ReadStatus.UnexpectedEof;
                // etcd gets io.ErrUnexpectedEOF from gogo for a field that runs past the record,
                // and takes it for a torn write: so does this, where a torn write can be.
                return parse == RecordParse.Truncated ? Truncated : ReadStatus.Corrupt;
            }
            // The type is an int64 on the wire; any value is kept, and one outside the enum's names is damage the caller reports.
            var type = (RecordType)wireType;
            record = new SegmentRecord(type, crc, data, _names[_fileIndex], offset, frameBytes);
            if (type == RecordType.Crc)
            {
                // A Crc record carries the chain's value rather than extending it. A reader that
                // starts past the first segment has no chain yet (0), so it adopts the record's.
                if (_checkCrc && Crc != 0 && crc != Crc)
                    return ReadStatus.ChainBroken;
                Crc = crc;
            }
            else if (_checkCrc)
            {
                uint chained = Crc32C.Update(Crc, data);
                if (crc != chained)
                {
                    record = default;
                    return IsTorn(body) ? ReadStatus.UnexpectedEof : ReadStatus.CrcMismatch;
                }
                Crc = chained;
            }
            Offset = offset + frameBytes;
            return ReadStatus.Record;
        }
        return ReadStatus.End;
    }

    /// <summary>
    /// A frame cut short. Only the last segment can be torn by a crash: a cut truncates and
    /// syncs a segment before the next one exists, so a short frame anywhere else is damage.
    /// </summary>
    private ReadStatus Truncated => InLastSegment ? ReadStatus.UnexpectedEof : ReadStatus.Corrupt;

    private void NextFile()
    {
        _fileIndex++;
        // At the end of the last segment the offset stays: it is where a writer appends.
        if (_fileIndex >= _files.Length)
        {
            Unmap();
            return;
        }
        Offset = 0;
        Enter();
    }

    /// <summary>Starts on the current segment: its length, and its mapping when the reader maps.</summary>
    private void Enter()
    {
        Unmap();
        var file = _files[_fileIndex];
        _fileLength = file.Length;
        _bufferOffset = 0;
        _bufferCount = 0;
        // Stryker disable once Equality : a segment of 2 GiB or more is read in chunks, as one that cannot be mapped
        if (_fileIndex < _mapped && _fileLength <= int.MaxValue && Map(file) is { } mapping)
        {
            _mapping = mapping;
            // Only what was mapped is read, should the file have changed length in between.
            _fileLength = Math.Min(_fileLength, mapping.Length);
            _bufferCount = (int)_fileLength;
        }
    }

    /// <summary>The current segment's mapping: the one lent for it, or one of the reader's own; null when it cannot be mapped.</summary>
    private FileMapping? Map(IStorageFile file)
    {
        if (_lent is not null && _fileIndex < _lent.Count && _lent[_fileIndex] is { } lent)
        {
            _ownsMapping = false;
            return lent;
        }
        _ownsMapping = true;
        return file is IMappableFile mappable ? mappable.TryMap() : null;
    }

    private void Unmap()
    {
        if (_mapping is null)
            return;
        if (_ownsMapping)
            _mapping.Dispose();
        _mapping = null;
        // The window was the mapping: a read after this reads the file again.
        _bufferOffset = 0;
        _bufferCount = 0;
    }

    /// <summary>Unmaps the segment being read, if it is mapped (a later read reads the file instead).</summary>
    public void Dispose() => Unmap();

    /// <summary>
    /// etcd's torn-write test: a write cut short by a crash leaves whole 512-byte sectors of
    /// zeros, so a failing record with an all-zero sector is torn rather than corrupt. Only the
    /// last segment can hold a torn write.
    /// </summary>
    private bool IsTorn(ReadOnlySpan<byte> body) =>
        InLastSegment && Frame.HasZeroSector(body, Offset + Layout.FrameHeaderBytes);

    private ReadOnlySpan<byte> Window(long offset, int count) =>
        _mapping is { } mapping ? mapping.Bytes(offset, count) : _buffer.AsSpan((int)(offset - _bufferOffset), count);

    /// <summary>Makes [offset, offset+count) of the current file available in the buffer; returns how much of it exists.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int Fill(long offset, int count) =>
        // Stryker disable once Equality,Logical,Arithmetic : buffer policy; whether the window is reused or read again, the same bytes are returned
        offset >= _bufferOffset && offset + count <= _bufferOffset + _bufferCount ? count : Refill(offset, count);

    /// <summary>Reads the file from <paramref name="offset"/> into the buffer, for <see cref="Fill"/>.</summary>
    private int Refill(long offset, int count)
    {
        // A mapped window already holds the whole file: what is missing is past its end.
        if (_mapping is not null)
            return (int)Math.Clamp(_fileLength - offset, 0, count);
        // The caller has checked count against the file's length, so this allocation is bounded by the file.
        // Stryker disable once Equality : buffer policy; a buffer of exactly the size asked replaced costs an allocation, not a byte
        if (count > _buffer.Length)
            _buffer = new byte[count];
        // Stryker disable once all : buffer policy; how large the read buffer grows, bounded by the file either way
        else if (_buffer.Length < ReadChunkBytes && _fileLength - offset > _buffer.Length)
            _buffer = new byte[Math.Min(ReadChunkBytes, _buffer.Length * 2)];
        // Stryker disable once Arithmetic : a read asked for past the file's end returns what the file holds
        int want = (int)Math.Min(_buffer.Length, Math.Max(0, _fileLength - offset));
        // Stryker disable once Equality,Conditional : a read of zero bytes returns zero
        int read = want > 0 ? _files[_fileIndex].Read(offset, _buffer.AsSpan(0, want)) : 0;
        _bufferOffset = offset;
        _bufferCount = read;
        return Math.Min(read, count);
    }
}
