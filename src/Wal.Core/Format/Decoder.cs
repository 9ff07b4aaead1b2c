using System.Buffers.Binary;
using Wal.Storage;

namespace Wal.Format;

/// <summary>What <see cref="Decoder.Next"/> found.</summary>
internal enum DecodeStatus
{
    /// <summary>A valid record; its fields are in the decoder's Record properties.</summary>
    Record,

    /// <summary>The data of the last segment ended cleanly (a zero length word or the end of the file).</summary>
    End,

    /// <summary>The last segment ends in a torn or truncated record.</summary>
    UnexpectedEof,

    /// <summary>A record's CRC does not match the chain, and the record is not torn.</summary>
    CrcMismatch,

    /// <summary>A record cannot be decoded, and it is not torn.</summary>
    Corrupt,

    /// <summary>A length word claims a record of 10 MiB or more, which etcd refuses to read.</summary>
    TooLarge,
}

/// <summary>
/// Reads records from a run of segments in order, checking every record's CRC against the
/// chain. Memory stays bounded: a frame is never read (or allocated) past the end of its file,
/// however large its length word claims it is.
/// </summary>
internal sealed class Decoder
{
    private const int ReadChunkBytes = 128 * 1024;
    private const int FirstChunkBytes = 8 * 1024;

    private readonly IReadOnlyList<IStorageFile> _files;
    private readonly IReadOnlyList<string> _names;
    private int _fileIndex;
    private long _fileLength;
    // Starts small and doubles up to ReadChunkBytes, so reading a short log stays cheap.
    private byte[] _buffer = new byte[FirstChunkBytes];
    private long _bufferOffset;
    private int _bufferCount;

    public Decoder(IReadOnlyList<IStorageFile> files, IReadOnlyList<string> names)
    {
        _files = files;
        _names = names;
        if (files.Count > 0)
            _fileLength = files[0].Length;
    }

    /// <summary>The running CRC chain: the CRC after the last record decoded.</summary>
    public uint Crc { get; set; }

    /// <summary>The offset, in the current segment, just past the last valid record.</summary>
    public long LastValidOffset { get; private set; }

    /// <summary>The name of the segment being read, for messages.</summary>
    public string CurrentName => _fileIndex < _names.Count ? _names[_fileIndex] : _names.Count > 0 ? _names[^1] : "";

    /// <summary>Where the record last returned starts in its segment.</summary>
    public long RecordOffset { get; private set; }

    /// <summary>The type of the record last returned.</summary>
    public long RecordType { get; private set; }

    /// <summary>The crc field of the record last returned.</summary>
    public uint RecordCrc { get; private set; }

    /// <summary>Where the last returned record's data lies in the buffer.</summary>
    private int _dataStart, _dataLength;

    /// <summary>The data of the record last returned; valid until the next call.</summary>
    public ReadOnlySpan<byte> RecordData => _buffer.AsSpan(_dataStart, _dataLength);

    /// <summary>Decodes the next record, moving on to the next segment at the end of one.</summary>
    public DecodeStatus Next()
    {
        while (_fileIndex < _files.Count)
        {
            long offset = LastValidOffset;
            int available = Fill(offset, Layout.FrameHeaderBytes);
            if (available == 0)
            {
                NextFile();
                continue;
            }
            // A partial length word cannot be a clean end: the writer writes whole frames.
            if (available < Layout.FrameHeaderBytes)
                return Truncated;
            ulong word = BinaryPrimitives.ReadUInt64LittleEndian(Window(offset, Layout.FrameHeaderBytes));
            // A zero word is preallocated space: this segment's data ends here.
            if (word == 0)
            {
                NextFile();
                continue;
            }
            var (recordBytes, padBytes) = Frame.Decode(word);
            // etcd 3.4 refuses a record of 10 MiB or more before reading it (ErrMaxWALEntrySizeLimitExceeded).
            if (recordBytes + (ulong)padBytes >= Layout.MaxRecordFrameBytes)
                return DecodeStatus.TooLarge;
            long left = _fileLength - offset - Layout.FrameHeaderBytes;
            // CVE-2020-15106: trust a length word only as far as the file goes.
            if (recordBytes + (ulong)padBytes > (ulong)Math.Max(0, left))
                return Truncated;
            int frameBytes = Layout.FrameHeaderBytes + (int)recordBytes + padBytes;
            if (Fill(offset, frameBytes) < frameBytes)
                return Truncated;
            var body = Window(offset + Layout.FrameHeaderBytes, (int)recordBytes + padBytes);
            var record = body[..(int)recordBytes];
            var parse = RecordCodec.DecodeRecord(record, out long type, out uint crc, out var data);
            if (parse != RecordParse.Ok)
            {
                if (IsTorn(body))
                    return DecodeStatus.UnexpectedEof;
                // etcd gets io.ErrUnexpectedEOF from gogo for a field that runs past the record,
                // and takes it for a torn write: so does this, where a torn write can be.
                return parse == RecordParse.Truncated ? Truncated : DecodeStatus.Corrupt;
            }
            // A Crc record carries the chain's value rather than extending it.
            if (type != (long)Wal.RecordType.Crc)
            {
                uint chained = Crc32C.Update(Crc, data);
                if (crc != chained)
                    return IsTorn(body) ? DecodeStatus.UnexpectedEof : DecodeStatus.CrcMismatch;
                Crc = chained;
            }
            RecordType = type;
            RecordCrc = crc;
            RecordOffset = offset;
            _dataStart = data.IsEmpty ? 0 : OffsetInBuffer(data);
            _dataLength = data.Length;
            LastValidOffset = offset + frameBytes;
            return DecodeStatus.Record;
        }
        return DecodeStatus.End;
    }

    /// <summary>
    /// A frame cut short. Only the last segment can be torn by a crash: a cut truncates and
    /// syncs a segment before the next one exists, so a short frame anywhere else is damage.
    /// </summary>
    private DecodeStatus Truncated => InLastSegment ? DecodeStatus.UnexpectedEof : DecodeStatus.Corrupt;

    /// <summary>Whether the decoder is in the last segment of the run.</summary>
    public bool InLastSegment => _fileIndex >= _files.Count - 1;

    private int OffsetInBuffer(ReadOnlySpan<byte> slice) =>
        (int)System.Runtime.CompilerServices.Unsafe.ByteOffset(
            ref System.Runtime.InteropServices.MemoryMarshal.GetArrayDataReference(_buffer),
            ref System.Runtime.InteropServices.MemoryMarshal.GetReference(slice));

    private void NextFile()
    {
        _fileIndex++;
        // At the end of the last segment the offset stays: it is where a writer appends.
        if (_fileIndex >= _files.Count)
            return;
        LastValidOffset = 0;
        _bufferOffset = 0;
        _bufferCount = 0;
        _fileLength = _fileIndex < _files.Count ? _files[_fileIndex].Length : 0;
    }

    /// <summary>
    /// etcd's torn-write test: a write cut short by a crash leaves whole 512-byte sectors of
    /// zeros, so a failing record with an all-zero sector is torn rather than corrupt. Only the
    /// last segment can hold a torn write.
    /// </summary>
    private bool IsTorn(ReadOnlySpan<byte> body)
    {
        if (!InLastSegment)
            return false;
        long fileOffset = LastValidOffset + Layout.FrameHeaderBytes;
        int pos = 0;
        while (pos < body.Length)
        {
            int chunk = (int)Math.Min(Layout.SectorBytes - (fileOffset % Layout.SectorBytes), body.Length - pos);
            if (!body.Slice(pos, chunk).ContainsAnyExcept((byte)0))
                return true;
            fileOffset += chunk;
            pos += chunk;
        }
        return false;
    }

    private ReadOnlySpan<byte> Window(long offset, int count) =>
        _buffer.AsSpan((int)(offset - _bufferOffset), count);

    /// <summary>Makes [offset, offset+count) of the current file available in the buffer; returns how much of it exists.</summary>
    private int Fill(long offset, int count)
    {
        if (offset >= _bufferOffset && offset + count <= _bufferOffset + _bufferCount)
            return count;
        // The caller has checked count against the file's length, so this allocation is bounded by the file.
        if (count > _buffer.Length)
            _buffer = new byte[count];
        else if (_buffer.Length < ReadChunkBytes && _fileLength - offset > _buffer.Length)
            _buffer = new byte[Math.Min(ReadChunkBytes, _buffer.Length * 2)];
        int want = (int)Math.Min(_buffer.Length, Math.Max(0, _fileLength - offset));
        int read = want > 0 ? _files[_fileIndex].Read(offset, _buffer.AsSpan(0, want)) : 0;
        _bufferOffset = offset;
        _bufferCount = read;
        return Math.Min(read, count);
    }
}
