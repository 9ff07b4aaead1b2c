using Wal.Format;

namespace Wal.Reading;

/// <summary>A segment file found in a WAL directory.</summary>
/// <param name="FileName">The file's name in the directory.</param>
/// <param name="Name">The sequence number and first index its name holds.</param>
internal readonly record struct SegmentFile(string FileName, SegmentName Name);
