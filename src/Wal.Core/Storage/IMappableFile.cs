namespace Wal.Storage;

/// <summary>
/// What a <see cref="IStorageFile"/> can offer besides positioned reads: its bytes mapped into
/// memory. The real Linux file does; a file that does not (the simulated one, any file system a
/// caller plugs in) is read with <see cref="IStorageFile.Read"/> only.
/// </summary>
internal interface IMappableFile
{
    /// <summary>
    /// Maps the file's bytes up to its current length, read-only; null when it cannot be mapped
    /// (empty, or the kernel refuses). The caller owns the mapping and disposes of it before the
    /// file.
    /// </summary>
    FileMapping? TryMap();
}
