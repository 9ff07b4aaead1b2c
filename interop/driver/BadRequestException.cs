namespace Wal.Interop;

/// <summary>A request the driver cannot follow (a missing field, a wrong type, an unknown op).</summary>
public sealed class BadRequestException : Exception
{
    /// <summary>A bad request, with what is wrong with it.</summary>
    /// <param name="message">What is wrong.</param>
    public BadRequestException(string message)
        : base(message)
    {
    }
}
