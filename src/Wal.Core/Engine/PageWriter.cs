using Wal.Format;
using Wal.Storage;

namespace Wal.Engine;

/// <summary>
/// Buffers writes and sends them to the file in whole pages, as etcd's pkg/ioutil PageWriter
/// does: once the buffer passes its watermark, the partial page is completed, the buffer
/// written, and full pages of the caller's data written straight through. What is written when
/// is part of the format's contract with etcd, because a cut is decided on the flushed offset;
/// so this mirrors etcd call for call.
/// </summary>
internal sealed class PageWriter
{
    private const int Watermark = Layout.PageWriterBufferBytes;

    private readonly IStorageFile _file;
    private const int Capacity = Layout.PageWriterBufferBytes + Layout.PageBytes;

    // Grown on demand up to Capacity: what is written when depends on the watermark alone, and
    // a short-lived writer (recovery, a small log) should not pay for 132 KiB up front.
    // Stryker disable once all : buffer policy; it changes how much is allocated and when bytes are handed to the file, never which bytes (docs/testing.md)
    private byte[] _buffer = new byte[2 * Layout.PageBytes];
    private int _buffered;

    /// <summary>A writer at <paramref name="offset"/>; <paramref name="buffer"/>, when given, is a predecessor's (see <see cref="HandOverBuffer"/>).</summary>
    public PageWriter(IStorageFile file, long offset, byte[]? buffer = null)
    {
        _file = file;
        FlushedOffset = offset;
        if (buffer is not null)
            _buffer = buffer;
    }

    /// <summary>
    /// The buffer, for the next segment's writer once this one is flushed, so that a cut does not
    /// grow a new buffer again Save by Save (about 250 KiB allocated per cut under large Saves);
    /// null while bytes are still buffered. This writer must not be written to afterwards.
    /// </summary>
    // Stryker disable once all : whether a cut reuses the buffer changes allocation only; it is called after a flush, when nothing is buffered
    public byte[]? HandOverBuffer() => _buffered == 0 ? _buffer : null;

    /// <summary>The file offset up to which bytes have been written to the file (etcd's file position).</summary>
    public long FlushedOffset { get; private set; }

    /// <summary>The file offset after every byte given so far, flushed or not.</summary>
    public long Position => FlushedOffset + _buffered;

    /// <summary>
    /// Space for <paramref name="count"/> bytes in the buffer when a Write of that many bytes
    /// would only buffer them; the caller fills it in place instead of copying.
    /// </summary>
    public bool TryReserve(int count, out Span<byte> space)
    {
        // Stryker disable once Equality : at exactly the watermark, buffering or writing first gives the file the same bytes
        if (count + _buffered <= Watermark)
        {
            Reserve(_buffered + count);
            space = _buffer.AsSpan(_buffered, count);
            _buffered += count;
            return true;
        }
        space = default;
        return false;
    }

    public void Write(ReadOnlySpan<byte> data)
    {
        while (true)
        {
            // Stryker disable once Equality : at exactly the watermark, buffering or writing first gives the file the same bytes
            if (data.Length + _buffered <= Watermark)
            {
                Reserve(_buffered + data.Length);
                data.CopyTo(_buffer.AsSpan(_buffered));
                _buffered += data.Length;
                return;
            }
            int slack = Layout.PageBytes - (int)((FlushedOffset + _buffered) % Layout.PageBytes);
            if (slack != Layout.PageBytes)
            {
                // Not enough to complete the page: keep it buffered rather than force an unaligned write.
                if (slack > data.Length)
                {
                    Reserve(_buffered + data.Length);
                    data.CopyTo(_buffer.AsSpan(_buffered));
                    _buffered += data.Length;
                    return;
                }
                Reserve(_buffered + slack);
                data[..slack].CopyTo(_buffer.AsSpan(_buffered));
                _buffered += slack;
                data = data[slack..];
            }
            Flush();
            // Stryker disable once Equality : one whole page written directly or buffered: the same bytes at the same offset
            if (data.Length > Layout.PageBytes)
            {
                int whole = data.Length / Layout.PageBytes * Layout.PageBytes;
                _file.Write(FlushedOffset, data[..whole]);
                WalMetrics.Written(whole);
                FlushedOffset += whole;
                data = data[whole..];
            }
        }
    }

    private void Reserve(int needed)
    {
        // Stryker disable once all : buffer policy; it changes how much is allocated and when bytes are handed to the file, never which bytes (docs/testing.md)
        if (needed <= _buffer.Length)
            return;
        // Stryker disable once all : buffer policy; it changes how much is allocated and when bytes are handed to the file, never which bytes (docs/testing.md)
        var grown = new byte[Math.Min(Capacity, Math.Max(needed, _buffer.Length * 2))];
        _buffer.AsSpan(0, _buffered).CopyTo(grown);
        _buffer = grown;
    }

    /// <summary>Writes out everything buffered, in one write.</summary>
    public void Flush()
    {
        // Stryker disable once all : an empty flush writing zero bytes changes nothing in the file
        if (_buffered == 0)
            return;
        _file.Write(FlushedOffset, _buffer.AsSpan(0, _buffered));
        WalMetrics.Written(_buffered);
        FlushedOffset += _buffered;
        _buffered = 0;
    }
}
