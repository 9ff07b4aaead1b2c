namespace Wal.Format;

/// <summary>
/// The checks etcd applies to records as they are read, in one place for every reader
/// (ReadAll, Verify, ValidSnapshotEntries, Repair), each with the error it gives.
/// </summary>
internal static class ReadRules
{
    /// <summary>
    /// A Crc record must carry the chain's value, then becomes the chain. A decoder that starts
    /// past the first segment has no chain yet (0), so it adopts the record's without a check.
    /// </summary>
    public static void AcceptCrc(Decoder decoder)
    {
        if (decoder.Crc != 0 && decoder.RecordCrc != decoder.Crc)
            throw new WalException(WalErrorKind.CrcMismatch,
                $"{decoder.CurrentName} starts with CRC {decoder.RecordCrc:x8}, but the segment before it ended with {decoder.Crc:x8}.");
        decoder.Crc = decoder.RecordCrc;
    }

    /// <summary>Every metadata record must equal the first non-empty one; returns the metadata so far.</summary>
    public static byte[]? AcceptMetadata(Decoder decoder, byte[]? metadata)
    {
        var data = decoder.RecordData;
        if (metadata is not null && !data.SequenceEqual(metadata))
            throw new WalException(WalErrorKind.MetadataConflict,
                $"The metadata in {decoder.CurrentName} differs from the metadata before it.");
        // Go reads empty data as nil, which later metadata is not compared against.
        return data.IsEmpty ? null : data.ToArray();
    }

    /// <summary>Whether a snapshot record is the wanted one; the same index with another term is SnapshotMismatch.</summary>
    public static bool MatchSnapshot(Decoder decoder, Snapshot wanted)
    {
        var loaded = DecodeSnapshot(decoder);
        if (loaded.Index != wanted.Index)
            return false;
        if (loaded.Term != wanted.Term)
            throw new WalException(WalErrorKind.SnapshotMismatch,
                $"The WAL has a snapshot at index {loaded.Index} with term {loaded.Term}, not {wanted.Term}.");
        return true;
    }

    public static Snapshot DecodeSnapshot(Decoder decoder) =>
        RecordCodec.TryDecodeSnapshot(decoder.RecordData, out var snapshot)
            ? snapshot
            : throw Corrupt(decoder, "a snapshot record's data is not a walpb.Snapshot");

    public static HardState DecodeState(Decoder decoder) =>
        RecordCodec.TryDecodeHardState(decoder.RecordData, out var state)
            ? state
            : throw Corrupt(decoder, "a state record's data is not a raftpb.HardState");

    public static Entry DecodeEntry(Decoder decoder) =>
        RecordCodec.TryDecodeEntry(decoder.RecordData, out var entry)
            ? entry
            : throw Corrupt(decoder, "an entry record's data is not a raftpb.Entry");

    public static WalException UnknownType(Decoder decoder) =>
        Corrupt(decoder, $"unknown record type {decoder.RecordType}");

    /// <summary>The error for a decoder status other than a record or a clean end.</summary>
    public static WalException StatusError(DecodeStatus status, Decoder decoder) => status switch
    {
        DecodeStatus.UnexpectedEof => new WalException(WalErrorKind.UnexpectedEof,
            $"{decoder.CurrentName} ends in a torn or truncated record at offset {decoder.LastValidOffset}; Repair can cut it off."),
        DecodeStatus.CrcMismatch => new WalException(WalErrorKind.CrcMismatch,
            $"The record at offset {decoder.LastValidOffset} of {decoder.CurrentName} fails its CRC check: the WAL is corrupt."),
        DecodeStatus.TooLarge => new WalException(WalErrorKind.RecordTooLarge,
            $"The length word at offset {decoder.LastValidOffset} of {decoder.CurrentName} claims a record of 10 MiB or more, which etcd refuses to read: the WAL is corrupt."),
        _ => Corrupt(decoder, "the record cannot be decoded"),
    };

    public static WalException Corrupt(Decoder decoder, string what) =>
        new(WalErrorKind.CorruptRecord, $"Corrupt record in {decoder.CurrentName} near offset {decoder.LastValidOffset}: {what}.");
}
