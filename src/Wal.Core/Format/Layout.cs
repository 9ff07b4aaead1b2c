// The on-disk format, which is etcd's (wal/doc.go, etcd 3.4 and 3.5), byte for byte.
//
// A WAL is a directory of segment files named "%016x-%016x.wal": the segment's sequence
// number, then the raft index of the first entry that may follow in it. Sequence numbers
// are contiguous. A segment is preallocated (fallocate) to the segment size, so a file's
// data ends at the first zero length word or at its end.
//
// A segment is a run of frames:
//
//   +-------------------------+-----------------------+-----------+
//   | length word: u64 LE     | record: len bytes     | 0-7 zeros |
//   +-------------------------+-----------------------+-----------+
//
// The low 56 bits of the length word are the record's length. When padding follows, the top
// byte is 0x80 | pad, so every frame ends on an 8-byte boundary and a length word is never
// torn across sectors. A zero length word ends the file's data.
//
// A record is the protobuf walpb.Record { type = 1 (int64), crc = 2 (uint32), data = 3 }, type
// and crc always present. data is, by type: Metadata (1) the caller's bytes; Entry (2) a
// raftpb.Entry; State (3) a raftpb.HardState; Crc (4) no data, crc holds the chain's value at
// the end of the previous segment; Snapshot (5) a walpb.Snapshot.
//
// crc is CRC-32C (Castagnoli) of the data of every record so far, chained across records and
// across segments; a Crc record does not advance the chain. Every segment starts with a Crc
// record (0 in the first segment), then Metadata; a segment opened by a cut then holds the
// last HardState; a new WAL's first segment holds Crc(0), Metadata and an empty Snapshot.
//
// Writes go out through a page writer (4096-byte pages, 128 KiB buffer), so a crash tears a
// write at sector boundaries and a torn record shows a zeroed 512-byte sector, which the
// decoder tells apart from corruption.
namespace Wal.Format;

/// <summary>Sizes and limits of the format.</summary>
internal static class Layout
{
    /// <summary>The size of a frame's length word.</summary>
    public const int FrameHeaderBytes = 8;

    /// <summary>The sector size a torn write is judged at.</summary>
    public const int SectorBytes = 512;

    /// <summary>The page writer's page size: eight sectors.</summary>
    public const int PageBytes = 8 * SectorBytes;

    /// <summary>How much the page writer buffers before it writes full pages out.</summary>
    public const int PageWriterBufferBytes = 128 * 1024;

    /// <summary>
    /// etcd 3.4's maxWALEntrySizeLimit: a frame whose record and padding come to this or more
    /// is refused on reading, so no writer may write one.
    /// </summary>
    public const int MaxRecordFrameBytes = 10 * 1024 * 1024;

    /// <summary>The extension of segment files.</summary>
    public const string SegmentExtension = ".wal";

    /// <summary>The extension of the file pipeline's prepared files.</summary>
    public const string TempExtension = ".tmp";
}
