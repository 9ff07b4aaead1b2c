namespace Wal;

/// <summary>What <see cref="WriteAheadLog.ReadAll"/> recovers from the log.</summary>
/// <param name="Metadata">The metadata given at <see cref="WriteAheadLog.Create(string, ReadOnlyMemory{byte}, WalOptions?)"/>.</param>
/// <param name="State">The last hard state saved.</param>
/// <param name="Entries">The entries after the snapshot the log was opened at, in index order, later writes of an index replacing earlier ones.</param>
public readonly record struct ReadAllResult(ReadOnlyMemory<byte> Metadata, HardState State, IReadOnlyList<Entry> Entries)
{
    /// <summary>Compares metadata bytes, state and entries element by element.</summary>
    /// <param name="other">The result to compare with.</param>
    /// <returns>True when both describe the same log contents.</returns>
    public bool Equals(ReadAllResult other) =>
        Metadata.Span.SequenceEqual(other.Metadata.Span)
        && State == other.State
        && (Entries ?? []).SequenceEqual(other.Entries ?? []);

    /// <summary>A hash over the state and the number of entries.</summary>
    /// <returns>The hash code.</returns>
    public override int GetHashCode() => HashCode.Combine(State, Entries?.Count ?? 0);

    /// <summary>A one-line summary.</summary>
    /// <returns>The description.</returns>
    public override string ToString()
    {
        var count = Entries?.Count ?? 0;
        return $"ReadAllResult(metadata={Metadata.Length} bytes, {State}, {count} {(count == 1 ? "entry" : "entries")})";
    }
}
