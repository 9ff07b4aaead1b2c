using Wal.Format;
using Wal.Storage;

namespace Wal.Engine;

/// <summary>
/// Buffers what the encoder gives it and writes it to the file in as few writes as it can,
/// while it keeps the account etcd's pkg/ioutil PageWriter keeps of the same bytes.
/// </summary>
/// <remarks>
/// <para>
/// etcd's writer buffers up to a watermark; past it, it completes the partial page, writes its
/// buffer out, and writes the caller's whole pages straight through. etcd decides a cut on the
/// file position those writes leave, before the Save's fdatasync (<see cref="FlushedOffset"/>).
/// So the account mirrors etcd call for call, and the segments end where etcd's end.
/// </para>
/// <para>
/// The writes need not mirror etcd's. Until the fdatasync, a crash may keep or lose any of
/// them, however they were cut up; and the next sync or cut writes everything out first. So
/// the bytes wait in the buffer, and a Save that syncs goes to the file in one write instead of
/// etcd's write per 128 KiB: 20-30 µs less CPU for a Save of 413 KB (bench/README.md, "One write a
/// Save"). Only past <see cref="MaxBufferBytes"/> are they written before the flush.
/// </para>
/// </remarks>
internal sealed class PageWriter
{
    private const int Watermark = Layout.PageWriterBufferBytes;

    /// <summary>The most the buffer holds before it is written out, whatever etcd's account says.</summary>
    public const int MaxBufferBytes = 1024 * 1024;

    private readonly IStorageFile _file;

    // Grown on demand up to MaxBufferBytes: a short-lived writer (recovery, a small log) or one
    // of small Saves should not pay for a large buffer up front.
    // Stryker disable once all : buffer policy; it changes how much is allocated, never which bytes (docs/testing.md)
    private byte[] _buffer = new byte[2 * Layout.PageBytes];
    private int _buffered;

    /// <summary>A writer at <paramref name="offset"/>; <paramref name="buffer"/>, when given, is a predecessor's (see <see cref="HandOverBuffer"/>).</summary>
    public PageWriter(IStorageFile file, long offset, byte[]? buffer = null)
    {
        _file = file;
        FlushedOffset = offset;
        WrittenOffset = offset;
        if (buffer is not null)
            _buffer = buffer;
    }

    /// <summary>
    /// The buffer, for the next segment's writer once this one is flushed, so that a cut does not
    /// grow a new buffer again Save by Save; null while bytes are still buffered. This writer
    /// must not be written to afterwards.
    /// </summary>
    // Stryker disable once all : whether a cut reuses the buffer changes allocation only; it is called after a flush, when nothing is buffered
    public byte[]? HandOverBuffer() => _buffered == 0 ? _buffer : null;

    /// <summary>
    /// The file position etcd's page writer would be at, given the same bytes in the same calls:
    /// what etcd decides a cut on. After a <see cref="Flush"/>, it is <see cref="Position"/>.
    /// </summary>
    public long FlushedOffset { get; private set; }

    /// <summary>The file offset up to which bytes have been written to the file.</summary>
    public long WrittenOffset { get; private set; }

    /// <summary>The file offset after every byte given so far, written or not.</summary>
    public long Position => WrittenOffset + _buffered;

    /// <summary>
    /// Space for a frame of <paramref name="frameBytes"/> bytes, accounted as etcd's encoder
    /// gives it (its length word, then the rest), for the caller to fill in place; false, with
    /// nothing accounted, when the frame is larger than the buffer may grow.
    /// </summary>
    public bool TryReserveFrame(int frameBytes, out Span<byte> space)
    {
        if (!TryPeek(frameBytes, out space))
            return false;
        space = space[..frameBytes];
        CommitFrame(frameBytes);
        return true;
    }

    /// <summary>
    /// Room for up to <paramref name="maxBytes"/> at the end of the buffer, for a frame whose size
    /// is known only once it is built: fill it, then <see cref="CommitFrame"/> what it came to.
    /// False when that is more than the buffer may grow.
    /// </summary>
    public bool TryPeek(int maxBytes, out Span<byte> space)
    {
        if (maxBytes > MaxBufferBytes)
        {
            space = default;
            return false;
        }
        space = Room(maxBytes);
        return true;
    }

    /// <summary>Takes the first <paramref name="frameBytes"/> of the room <see cref="TryPeek"/> gave, accounted as <see cref="TryReserveFrame"/> accounts a frame.</summary>
    public void CommitFrame(int frameBytes)
    {
        Account(Position, Layout.FrameHeaderBytes);
        Account(Position + Layout.FrameHeaderBytes, frameBytes - Layout.FrameHeaderBytes);
        _buffered += frameBytes;
    }

    /// <summary>Takes <paramref name="data"/>, accounted as one write to etcd's page writer.</summary>
    public void Write(ReadOnlySpan<byte> data)
    {
        Account(Position, data.Length);
        if (data.Length <= MaxBufferBytes)
        {
            data.CopyTo(Room(data.Length));
            _buffered += data.Length;
            return;
        }
        WriteOut();
        WriteToFile(data);
    }

    /// <summary>Writes out everything buffered, in one write; etcd's account then has it all written too.</summary>
    public void Flush()
    {
        WriteOut();
        FlushedOffset = WrittenOffset;
    }

    // etcd's PageWriter.Write, on lengths alone: what it would write of `count` more bytes,
    // given after the bytes up to `given`.
    private void Account(long given, int count)
    {
        long held = given - FlushedOffset;
        long left = count;
        while (true)
        {
            // Stryker disable once Equality : at exactly the watermark, buffering or writing first gives the file the same bytes
            if (left + held <= Watermark)
                return;
            long slack = Layout.PageBytes - (FlushedOffset + held) % Layout.PageBytes;
            if (slack != Layout.PageBytes)
            {
                // Not enough to complete the page: etcd keeps it buffered rather than write an unaligned tail.
                if (slack > left)
                    return;
                held += slack;
                left -= slack;
            }
            FlushedOffset += held;
            held = 0;
            // Stryker disable once Equality : one whole page written directly or buffered: the same bytes at the same offset
            if (left > Layout.PageBytes)
            {
                long whole = left / Layout.PageBytes * Layout.PageBytes;
                FlushedOffset += whole;
                left -= whole;
            }
        }
    }

    // `count` bytes past the end of the buffer, not yet taken; the buffer is written out first
    // when they would take it past its limit.
    private Span<byte> Room(int count)
    {
        if (_buffered + count > MaxBufferBytes)
            WriteOut();
        int needed = _buffered + count;
        // Stryker disable once all : buffer policy; it changes how much is allocated and when bytes are handed to the file, never which bytes (docs/testing.md)
        if (needed > _buffer.Length)
        {
            // Stryker disable once all : buffer policy; it changes how much is allocated and when bytes are handed to the file, never which bytes (docs/testing.md)
            var grown = new byte[Math.Min(MaxBufferBytes, Math.Max(needed, _buffer.Length * 2))];
            _buffer.AsSpan(0, _buffered).CopyTo(grown);
            _buffer = grown;
        }
        return _buffer.AsSpan(_buffered, count);
    }

    private void WriteOut()
    {
        // Stryker disable once all : an empty write changes nothing in the file
        if (_buffered == 0)
            return;
        WriteToFile(_buffer.AsSpan(0, _buffered));
        _buffered = 0;
    }

    private void WriteToFile(ReadOnlySpan<byte> data)
    {
        _file.Write(WrittenOffset, data);
        WalMetrics.Written(data.Length);
        WrittenOffset += data.Length;
    }
}
