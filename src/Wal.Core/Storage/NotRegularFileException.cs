namespace Wal.Storage;

/// <summary>
/// A path where the log needs a regular file holds something else: a symbolic link, a FIFO, a
/// device, a socket or a directory. The log never follows a link or opens such a file for its
/// data, so a hostile directory can neither make it block (a FIFO), read without end (a link to
/// /dev/zero), nor write outside the WAL directory (a link to a file elsewhere).
/// </summary>
public sealed class NotRegularFileException : IOException
{
    /// <summary>Creates the exception for <paramref name="path"/>, which holds a <paramref name="what"/>.</summary>
    /// <param name="path">The path.</param>
    /// <param name="what">What the path holds, as a noun ("a symbolic link", "a FIFO", ...).</param>
    public NotRegularFileException(string path, string what)
        : base($"{path} is {what}, not a regular file")
    {
        Path = path;
        What = what;
    }

    /// <summary>The path that is not a regular file.</summary>
    public string Path { get; }

    /// <summary>What the path holds instead, as a noun: "a symbolic link", "a FIFO", "a directory", ...</summary>
    public string What { get; }
}
