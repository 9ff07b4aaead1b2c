using Wal.Reading;

namespace Wal.Engine;

/// <summary>
/// A log between Open (or OpenForRead) and ReadAll: the segments chosen for the snapshot,
/// open (and, to write, locked), and the reader over them.
/// </summary>
internal sealed class PendingRead(Snapshot start, List<OpenSegment> segments, IReadOnlyList<string> fileNames, bool write, bool map) : IDisposable
{
    /// <summary>The snapshot the log was opened at, which ReadAll replays from.</summary>
    public Snapshot Start { get; } = start;

    /// <summary>Whether the log was opened to append after ReadAll (Open) or only to read (OpenForRead).</summary>
    public bool Write { get; } = write;

    /// <summary>The segments, in order; after a write-mode ReadAll the last becomes the tail.</summary>
    public List<OpenSegment> Segments { get; } = segments;

    /// <summary>
    /// The one reader over the segments, which names them in messages as the directory does. It
    /// reads mapped segments the writer holds locked, or, read-only, every segment but the last,
    /// which another process's writer may still cut (truncate) while it is read.
    /// </summary>
    public SegmentReader Reader { get; } = new(segments.ConvertAll(s => s.File), fileNames,
        mapped: !map ? 0 : write ? segments.Count : segments.Count - 1);

    /// <summary>Raft's invariants over what is read, knowing nothing before the first segment read.</summary>
    public RaftInvariants Invariants { get; } = RaftInvariants.After(fileNames);

    /// <summary>Closes every segment.</summary>
    public void Dispose()
    {
        Reader.Dispose();
        foreach (var segment in Segments)
            segment.File.Dispose();
        // Stryker disable once Statement : a pending read is disposed once (then dropped); clearing guards a second Dispose
        Segments.Clear();
    }
}
