namespace Wal.Interop;

/// <summary>Receives one record recovered from a log.</summary>
/// <param name="record">The record's bytes, valid during the call only.</param>
public delegate void RecordReader(ReadOnlySpan<byte> record);
