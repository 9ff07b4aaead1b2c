namespace Wal;

/// <summary>
/// Receives one entry of <see cref="LogSurvey.VisitEntries"/> in place: its payload lies in the
/// reader's buffer and is valid only during the call (copy it to keep it).
/// </summary>
/// <param name="term">The entry's term.</param>
/// <param name="index">The entry's index.</param>
/// <param name="type">The entry's type.</param>
/// <param name="data">The entry's payload, valid only during the call.</param>
public delegate void EntryVisitor(ulong term, ulong index, EntryType type, ReadOnlySpan<byte> data);
