namespace Wal;

/// <summary>The one exception type of the write-ahead log; <see cref="Kind"/> says what went wrong.</summary>
public sealed class WalException : Exception
{
    /// <summary>Creates an exception of the given kind.</summary>
    /// <param name="kind">What went wrong.</param>
    /// <param name="message">A message a person can act on.</param>
    /// <param name="inner">The underlying exception, if any.</param>
    public WalException(WalErrorKind kind, string message, Exception? inner = null)
        : base(message, inner) => Kind = kind;

    /// <summary>What went wrong.</summary>
    public WalErrorKind Kind { get; }

    /// <summary>
    /// For <see cref="WalErrorKind.SnapshotNotFound"/>: the contents that were read all the
    /// same, as etcd returns them beside the error.
    /// </summary>
    public ReadAllResult? Contents { get; init; }

    /// <summary>
    /// The contents read beside a <see cref="WalErrorKind.SnapshotNotFound"/>, without a
    /// Nullable to unwrap (in F#: <c>match ex.TryGetContents() with | true, contents -> ... | _ -> ...</c>).
    /// </summary>
    /// <param name="contents">The contents, or the default value when there are none.</param>
    /// <returns>True when the exception carries contents.</returns>
    public bool TryGetContents(out ReadAllResult contents)
    {
        contents = Contents.GetValueOrDefault();
        return Contents.HasValue;
    }

    internal static WalException InvalidArgument(string message) => new(WalErrorKind.InvalidArgument, message);

    internal static WalException InvalidState(string message) => new(WalErrorKind.InvalidState, message);

    internal static WalException Io(string what, Exception inner) =>
        new(inner is Storage.NotRegularFileException ? WalErrorKind.NotRegularFile : WalErrorKind.Io,
            $"{what}: {inner.Message}", inner);
}
