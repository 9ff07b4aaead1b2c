namespace Wal.Reading;

/// <summary>
/// One record as <see cref="SegmentReader.Next"/> found it. <see cref="Data"/> lies in the
/// reader's buffer, so the record is valid until the reader's next call.
/// </summary>
/// <param name="type">The record's type field; a value outside <see cref="RecordType"/>'s names is damage.</param>
/// <param name="crc">The record's crc field.</param>
/// <param name="data">The record's data.</param>
/// <param name="segment">The name of the segment file the record lies in.</param>
/// <param name="offset">Where the record's frame starts in the segment.</param>
/// <param name="frameBytes">The frame's length: the length word, the record and its padding.</param>
internal readonly ref struct SegmentRecord(RecordType type, uint crc, ReadOnlySpan<byte> data, string segment, long offset, int frameBytes)
{
    /// <summary>The record's type field.</summary>
    public RecordType Type { get; } = type;

    /// <summary>The record's crc field.</summary>
    public uint Crc { get; } = crc;

    /// <summary>The record's data, in the reader's buffer.</summary>
    public ReadOnlySpan<byte> Data { get; } = data;

    /// <summary>The name of the segment file the record lies in.</summary>
    public string Segment { get; } = segment;

    /// <summary>Where the record's frame starts in the segment.</summary>
    public long Offset { get; } = offset;

    /// <summary>The frame's length: the length word, the record and its padding.</summary>
    public int FrameBytes { get; } = frameBytes;

    /// <summary>Where the frame ends in the segment: where the next frame starts.</summary>
    public long End => Offset + FrameBytes;
}
