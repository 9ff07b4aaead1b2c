namespace Wal.Storage;

/// <summary>Permission denied, as an <see cref="IOException"/> carrying the errno.</summary>
internal sealed class UnauthorizedAccessIOException(string message, int errno) : IOException(message, errno);
