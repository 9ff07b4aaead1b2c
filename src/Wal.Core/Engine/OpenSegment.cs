using Wal.Format;
using Wal.Storage;

namespace Wal.Engine;

/// <summary>A segment the log holds open: for reading before ReadAll, for its lock after.</summary>
/// <param name="Name">The segment's sequence number and first index.</param>
/// <param name="File">The open file; whoever holds the segment disposes it.</param>
internal readonly record struct OpenSegment(SegmentName Name, IStorageFile File);
