namespace Wal.Storage;

/// <summary>How <see cref="IFileSystem.OpenFile"/> opens a file.</summary>
public enum OpenMode
{
    /// <summary>Open an existing file for reading only.</summary>
    Read,

    /// <summary>Open an existing file for reading and writing.</summary>
    ReadWrite,

    /// <summary>Create the file, or truncate it to zero length if it exists, for reading and writing.</summary>
    CreateTruncate,
}
