namespace Wal;

/// <summary>
/// A snapshot marker as the WAL stores it (walpb.Snapshot): the index and term of a raft
/// snapshot, so that a reader can start replaying right after it.
/// </summary>
/// <param name="Index">The index of the last entry the snapshot covers.</param>
/// <param name="Term">The term of that entry.</param>
/// <param name="ConfState">The membership at the snapshot (written by etcd 3.5; absent in 3.4 files).</param>
public readonly record struct Snapshot(ulong Index, ulong Term, ConfState? ConfState = null)
{
    /// <summary>The zero snapshot, with which a new WAL starts and at which a full replay opens.</summary>
    public static Snapshot Zero => default;
}
