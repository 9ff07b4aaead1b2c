using System.Buffers.Binary;
using Wal.Format;

namespace Wal.Engine;

/// <summary>
/// Frames records, extends the CRC chain over their data and hands them to the page writer.
/// An entry's payload is copied once, from the caller's memory into the page buffer; nothing
/// is allocated per record unless a record is larger than the buffer may grow.
/// </summary>
internal sealed class Encoder(PageWriter writer, uint previousCrc, byte[]? scratch = null)
{
    // Stryker disable once all : reusing the predecessor's frame buffer saves an allocation; the bytes are the same
    private byte[] _scratch = scratch ?? [];

    /// <summary>The frame buffer for records larger than the page buffer may grow, which a cut hands to the next segment's encoder.</summary>
    public byte[] Scratch => _scratch;

    /// <summary>The chain's value after the last record encoded.</summary>
    public uint Crc { get; private set; } = previousCrc;

    /// <summary>The page writer the frames go to.</summary>
    public PageWriter Writer => writer;

    public void EncodeEntry(in Entry entry)
    {
        Span<byte> head = stackalloc byte[RecordCodec.MaxEntryHeaderBytes];
        int headBytes = RecordCodec.WriteEntryHeader(head, entry);
        Encode(RecordType.Entry, head[..headBytes], entry.Data.Span);
    }

    public void EncodeState(in HardState state)
    {
        Span<byte> data = stackalloc byte[RecordCodec.MaxHardStateBytes];
        int n = RecordCodec.WriteHardState(data, state);
        Encode(RecordType.State, data[..n], default);
    }

    /// <summary>A Crc record: no data, so its crc field is the chain's current value.</summary>
    public void EncodeCrc() => Encode(RecordType.Crc, default, default);

    public void Encode(RecordType type, ReadOnlySpan<byte> head, ReadOnlySpan<byte> body)
    {
        if (body.Length >= Crc32C.FoldBytes && Crc32CFold.IsSupported && TryEncodeInOnePass(type, head, body))
            return;
        uint crc = Crc32C.Update(Crc32C.Update(Crc, head), body);
        int recordBytes = RecordCodec.RecordSize(crc, head.Length + body.Length);
        int frameBytes = Frame.SizeOf(recordBytes);
        // Built in place in the page buffer, which accounts it as etcd's two writes (the length
        // word, then the padded record); only a frame larger than the buffer goes through a copy.
        if (writer.TryReserveFrame(frameBytes, out var frame))
        {
            WriteFrame(frame, type, crc, recordBytes, head, body);
        }
        else
        {
            // Stryker disable once Equality : replacing a buffer of exactly the frame's size costs an allocation, not a byte
            if (_scratch.Length < frameBytes)
                // Stryker disable once Arithmetic : growth policy; the buffer is at least the frame whatever the factor
                _scratch = new byte[Math.Max(frameBytes, _scratch.Length * 2)];
            var span = _scratch.AsSpan(0, frameBytes);
            WriteFrame(span, type, crc, recordBytes, head, body);
            writer.Write(span[..Layout.FrameHeaderBytes]);
            writer.Write(span[Layout.FrameHeaderBytes..]);
        }
        Crc = crc;
    }

    // A large body is checksummed as it is copied into the page buffer, one pass over the
    // caller's memory instead of two. Where it lands depends on the width of the crc varint
    // before it, known only after: it is copied as if the widest (five bytes, 15 CRCs in 16) and
    // moved down the one to four bytes otherwise.
    private bool TryEncodeInOnePass(RecordType type, ReadOnlySpan<byte> head, ReadOnlySpan<byte> body)
    {
        int dataBytes = head.Length + body.Length;
        if (!writer.TryPeek(Frame.SizeOf(RecordCodec.RecordSize(uint.MaxValue, dataBytes)), out var room))
            return false;
        int widest = Layout.FrameHeaderBytes + RecordCodec.DataOffset(uint.MaxValue, dataBytes) + head.Length;
        uint crc = Crc32C.UpdateAndCopy(Crc32C.Update(Crc, head), body, room[widest..]);
        int recordBytes = RecordCodec.RecordSize(crc, dataBytes);
        int frameBytes = Frame.SizeOf(recordBytes);
        BinaryPrimitives.WriteUInt64LittleEndian(room, Frame.Encode(recordBytes));
        int at = Layout.FrameHeaderBytes + RecordCodec.WriteRecordHead(room[Layout.FrameHeaderBytes..], type, crc, head, dataBytes);
        if (at < widest)
            room.Slice(widest, body.Length).CopyTo(room[at..]);
        room[(Layout.FrameHeaderBytes + recordBytes)..frameBytes].Clear();
        writer.CommitFrame(frameBytes);
        Crc = crc;
        return true;
    }

    private static void WriteFrame(Span<byte> frame, RecordType type, uint crc, int recordBytes, ReadOnlySpan<byte> head, ReadOnlySpan<byte> body)
    {
        BinaryPrimitives.WriteUInt64LittleEndian(frame, Frame.Encode(recordBytes));
        int n = RecordCodec.WriteRecord(frame[Layout.FrameHeaderBytes..], type, crc, head, body);
        frame[(Layout.FrameHeaderBytes + n)..].Clear();
    }
}
