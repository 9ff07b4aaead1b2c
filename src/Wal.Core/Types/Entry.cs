using System.Text;

namespace Wal;

/// <summary>
/// A raft log entry as the WAL stores it (raftpb.Entry). Two entries are equal when their
/// term, index, type and data bytes are equal. The constructors' parameters are named
/// <c>term</c>, <c>index</c>, <c>type</c> and <c>data</c> in every overload, so named arguments
/// read the same from C# and F#.
/// </summary>
public readonly record struct Entry
{
    /// <summary>Creates an entry.</summary>
    /// <param name="term">The raft term in which the entry was proposed.</param>
    /// <param name="index">The entry's position in the raft log; the first entry has index 1.</param>
    /// <param name="type">The kind of entry.</param>
    /// <param name="data">The entry's payload; empty data is stored as an absent field, as etcd stores nil.</param>
    public Entry(ulong term, ulong index, EntryType type, ReadOnlyMemory<byte> data)
    {
        Term = term;
        Index = index;
        Type = type;
        Data = data;
    }

    /// <summary>Creates a <see cref="EntryType.Normal"/> entry.</summary>
    /// <param name="term">The raft term.</param>
    /// <param name="index">The raft index.</param>
    /// <param name="data">The payload.</param>
    public Entry(ulong term, ulong index, ReadOnlyMemory<byte> data)
        : this(term, index, EntryType.Normal, data) { }

    /// <summary>Creates a <see cref="EntryType.Normal"/> entry over a byte array (not copied).</summary>
    /// <param name="term">The raft term.</param>
    /// <param name="index">The raft index.</param>
    /// <param name="data">The payload; null is empty.</param>
    public Entry(ulong term, ulong index, byte[]? data)
        : this(term, index, EntryType.Normal, data) { }

    /// <summary>Creates a <see cref="EntryType.Normal"/> entry whose payload is a string in UTF-8.</summary>
    /// <param name="term">The raft term.</param>
    /// <param name="index">The raft index.</param>
    /// <param name="data">The payload, encoded as UTF-8; null is empty.</param>
    public Entry(ulong term, ulong index, string? data)
        : this(term, index, EntryType.Normal, Encoding.UTF8.GetBytes(data ?? "")) { }

    /// <summary>The raft term in which the entry was proposed.</summary>
    public ulong Term { get; init; }

    /// <summary>The entry's position in the raft log; the first entry has index 1.</summary>
    public ulong Index { get; init; }

    /// <summary>The kind of entry.</summary>
    public EntryType Type { get; init; }

    /// <summary>The entry's payload; empty data is stored as an absent field, as etcd stores nil.</summary>
    public ReadOnlyMemory<byte> Data { get; init; }

    /// <summary>Splits the entry into its four values (<c>var (term, index, type, data) = entry;</c>).</summary>
    /// <param name="term">The raft term.</param>
    /// <param name="index">The raft index.</param>
    /// <param name="type">The kind of entry.</param>
    /// <param name="data">The payload.</param>
    public void Deconstruct(out ulong term, out ulong index, out EntryType type, out ReadOnlyMemory<byte> data)
    {
        term = Term;
        index = Index;
        type = Type;
        data = Data;
    }

    /// <summary>Splits the entry into term, index and payload (<c>var (term, index, data) = entry;</c>).</summary>
    /// <param name="term">The raft term.</param>
    /// <param name="index">The raft index.</param>
    /// <param name="data">The payload.</param>
    public void Deconstruct(out ulong term, out ulong index, out ReadOnlyMemory<byte> data)
    {
        term = Term;
        index = Index;
        data = Data;
    }

    /// <summary>The payload decoded as UTF-8 (invalid sequences become U+FFFD).</summary>
    /// <returns>The payload as text.</returns>
    public string DataAsString() => Encoding.UTF8.GetString(Data.Span);

    /// <summary>Compares term, index, type and the data's bytes.</summary>
    /// <param name="other">The entry to compare with.</param>
    /// <returns>True when both entries hold the same values.</returns>
    public bool Equals(Entry other) =>
        Term == other.Term
        && Index == other.Index
        && Type == other.Type
        && Data.Span.SequenceEqual(other.Data.Span);

    /// <summary>A hash over term, index, type and data.</summary>
    /// <returns>The hash code.</returns>
    public override int GetHashCode()
    {
        var hash = new HashCode();
        hash.Add(Term);
        hash.Add(Index);
        hash.Add(Type);
        hash.AddBytes(Data.Span);
        return hash.ToHashCode();
    }

    /// <summary>
    /// A short description: term, index, type (when not normal) and the data's length with a
    /// preview of at most 16 bytes, as text when they are printable ASCII and as hex otherwise.
    /// </summary>
    /// <returns>The description, such as <c>Entry(term=1, index=2, 7 B "put a=1")</c>.</returns>
    public override string ToString()
    {
        var type = Type == EntryType.Normal ? "" : $", {Type}";
        return $"Entry(term={Term}, index={Index}{type}, {Preview(Data.Span)})";
    }

    internal static string Preview(ReadOnlySpan<byte> data)
    {
        const int Shown = 16;
        if (data.IsEmpty)
            return "0 B";
        var head = data[..Math.Min(Shown, data.Length)];
        var more = data.Length > Shown ? "..." : "";
        var printable = true;
        foreach (var b in head)
            printable &= b is >= 0x20 and < 0x7f;
        var shown = printable ? $"\"{Encoding.ASCII.GetString(head)}{more}\"" : $"0x{Convert.ToHexStringLower(head)}{more}";
        return $"{data.Length} B {shown}";
    }
}
