namespace Wal.Interop;

/// <summary>A third-party log library: how to open (and recover) a log in a directory.</summary>
public interface IRecordStore
{
    /// <summary>The name the driver gives in <c>hello</c>.</summary>
    string Name { get; }

    /// <summary>
    /// Opens the log in <paramref name="dir"/> (creating it when it is not there) with the library's
    /// own recovery, passes every record it recovers to <paramref name="read"/> in the order written,
    /// and returns the log ready to append after them.
    /// </summary>
    /// <param name="dir">The log's directory.</param>
    /// <param name="read">Called with each record recovered (the span is valid during the call only).</param>
    /// <returns>The open log.</returns>
    IRecordLog Open(string dir, RecordReader read);
}
