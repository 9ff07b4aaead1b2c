namespace Wal.Snap;

/// <summary>A snapshot file a search passed over, newest first, and why.</summary>
/// <param name="FileName">The file's name in the snapshot directory (before any rename to .broken).</param>
/// <param name="Reason">Why it was passed over.</param>
/// <param name="Message">What was wrong, as a person reads it.</param>
public readonly record struct SkippedSnapshot(string FileName, SkipReason Reason, string Message);
