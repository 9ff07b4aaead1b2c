using Google.Protobuf;
using Wal.Format;

namespace Wal.Snap;

/// <summary>
/// Encodes and decodes a .snap file's bytes: snappb.snapshot {crc, data} where data is a
/// raftpb.Snapshot and crc its CRC-32C. Presence follows etcd's gogo-generated marshallers
/// (non-nullable fields always written, bytes fields only when non-empty), so a file this
/// writes is the file etcd's SaveSnap writes for the same snapshot. Checks follow etcd's snap.Read.
/// </summary>
internal static class SnapCodec
{
    /// <summary>The bytes of the file for <paramref name="snapshot"/>.</summary>
    public static byte[] Encode(RaftSnapshot snapshot)
    {
        var cs = snapshot.ConfState;
        var confState = new Format.Protos.ConfState { AutoLeave = cs?.AutoLeave ?? false };
        if (cs is not null)
        {
            confState.Voters.AddRange(cs.Voters);
            confState.Learners.AddRange(cs.Learners);
            confState.VotersOutgoing.AddRange(cs.VotersOutgoing);
            confState.LearnersNext.AddRange(cs.LearnersNext);
        }
        var raft = new Protos.RaftSnapshot
        {
            Metadata = new Protos.SnapshotMetadata { ConfState = confState, Index = snapshot.Index, Term = snapshot.Term },
        };
        if (!snapshot.Data.IsEmpty)
            raft.Data = ByteString.CopyFrom(snapshot.Data.Span);
        var data = raft.ToByteArray();
        return new Protos.SnapFile { Crc = Crc32C.Update(0, data), Data = ByteString.CopyFrom(data) }.ToByteArray();
    }

    /// <summary>
    /// The snapshot in a file's bytes; a <see cref="WalException"/> when etcd's snap.Read would
    /// refuse them: empty (CorruptRecord, etcd's ErrEmptySnapshot), a CRC that does not match
    /// (CrcMismatch), or bytes that are not the messages (CorruptRecord).
    /// </summary>
    public static RaftSnapshot Decode(ReadOnlySpan<byte> bytes, string path)
    {
        if (bytes.IsEmpty)
            throw new WalException(WalErrorKind.CorruptRecord, $"{path} is empty (etcd's ErrEmptySnapshot).");
        Protos.SnapFile file;
        try
        {
            file = Protos.SnapFile.Parser.ParseFrom(bytes);
        }
        catch (InvalidProtocolBufferException ex)
        {
            throw new WalException(WalErrorKind.CorruptRecord, $"{path} is not a snappb.Snapshot: {ex.Message}", ex);
        }
        if (file.Data.IsEmpty || file.Crc == 0)
            throw new WalException(WalErrorKind.CorruptRecord, $"{path} holds no snapshot data or no CRC (etcd's ErrEmptySnapshot).");
        var data = file.Data.Span;
        uint crc = Crc32C.Update(0, data);
        if (crc != file.Crc)
            throw new WalException(WalErrorKind.CrcMismatch, $"{path}: the CRC of the snapshot data is {crc:x8}, the file says {file.Crc:x8}.");
        Protos.RaftSnapshot raft;
        try
        {
            raft = Protos.RaftSnapshot.Parser.ParseFrom(data);
        }
        catch (InvalidProtocolBufferException ex)
        {
            throw new WalException(WalErrorKind.CorruptRecord, $"{path}: the snapshot data is not a raftpb.Snapshot: {ex.Message}", ex);
        }
        var metadata = raft.Metadata ?? new Protos.SnapshotMetadata();
        var pb = metadata.ConfState ?? new Format.Protos.ConfState();
        var confState = new ConfState(pb.Voters, pb.Learners, pb.VotersOutgoing, pb.LearnersNext, pb.AutoLeave);
        return new RaftSnapshot(metadata.Index, metadata.Term, raft.Data.ToByteArray(), confState);
    }
}
