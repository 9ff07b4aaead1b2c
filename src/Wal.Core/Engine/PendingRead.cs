using Wal.Reading;

namespace Wal.Engine;

/// <summary>
/// A log between Open (or OpenForRead) and ReadAll: the segments chosen for the snapshot,
/// open (and, to write, locked), and the reader over them.
/// </summary>
internal sealed class PendingRead(Snapshot start, List<OpenSegment> segments, IReadOnlyList<string> fileNames, bool write) : IDisposable
{
    /// <summary>The snapshot the log was opened at, which ReadAll replays from.</summary>
    public Snapshot Start { get; } = start;

    /// <summary>Whether the log was opened to append after ReadAll (Open) or only to read (OpenForRead).</summary>
    public bool Write { get; } = write;

    /// <summary>The segments, in order; after a write-mode ReadAll the last becomes the tail.</summary>
    public List<OpenSegment> Segments { get; } = segments;

    /// <summary>The one reader over the segments, which names them in messages as the directory does.</summary>
    public SegmentReader Reader { get; } = new(segments.ConvertAll(s => s.File), fileNames);

    /// <summary>Raft's invariants over what is read, knowing nothing before the first segment read.</summary>
    public RaftInvariants Invariants { get; } = RaftInvariants.After(fileNames);

    /// <summary>Closes every segment.</summary>
    public void Dispose()
    {
        foreach (var segment in Segments)
            segment.File.Dispose();
        // Stryker disable once Statement : a pending read is disposed once (then dropped); clearing guards a second Dispose
        Segments.Clear();
    }
}
