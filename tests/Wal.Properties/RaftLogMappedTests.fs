/// RaftLog's mapped read path on the real disk (WalOptions.MapSegments): reads equal to the
/// positioned-read path across cuts, overwrites and a reopen; a segment a cut truncated below its
/// mapping; a frame damaged past the file's end under the running log; readers racing appends, CompactTo and
/// Dispose (and, deterministically, a reader inside a dropped and removed segment); and the
/// model-checked readers property on mapped segments. /proc/self/maps shows
/// that the segments are mapped, and unmapped once nothing holds them.
module Wal.Properties.RaftLogMappedTests

open System
open System.IO
open System.Threading
open Expecto
open Wal
open Wal.Oracle.Scenarios
open Wal.Properties.Support
open Wal.Properties.RaftLogReaders

/// The payload of entry `index` of `term`: its size varies from none to past a page, so frames
/// straddle page boundaries of the mapping.
let private payload (term: uint64) (index: uint64) =
    let size =
        match index % 11UL with
        | 0UL -> 0
        | 5UL -> 5000
        | _ -> int ((index * 7919UL) % 1500UL)

    Array.init size (fun j -> byte ((int index * 31 + int term * 7 + j) % 251))

let private entry (term: uint64) (index: uint64) =
    Entry(term, index, ReadOnlyMemory(payload term index))

/// An entry as a comparable value (Entry's Data compares by reference).
let private shown (e: Entry) =
    e.Term, e.Index, e.Type, e.Data.ToArray()

/// The segment files of the log under `root` that this process has mapped, with each mapping's length.
let private mappedSegments (root: string) =
    File.ReadAllLines "/proc/self/maps"
    |> Array.choose (fun line ->
        let at = line.IndexOf root

        if at < 0 then
            None
        else
            let range = line.Split(' ').[0].Split('-')
            let length = Convert.ToInt64(range[1], 16) - Convert.ToInt64(range[0], 16)
            Some(line.Substring(at), length))
    |> List.ofArray

/// Every entry of `log` read three ways (one at a time, one range, ranges under a size limit), as values.
let private readEverything (log: RaftLog) =
    let first, last = log.FirstIndex, log.LastIndex
    let single = [ for i in first..last -> shown (log.GetEntry i) ]
    let whole = log.GetEntries(first, last + 1UL) |> Seq.map shown |> List.ofSeq

    let limited =
        let rec go (lo: uint64) acc =
            if lo > last then
                List.rev acc
            else
                let got = log.GetEntries(lo, last + 1UL, 6000UL) |> Seq.map shown |> List.ofSeq
                go (lo + uint64 got.Length) (List.rev got @ acc)

        go first []

    Expect.equal whole single "GetEntries over the whole range against GetEntry one at a time"
    Expect.equal limited single "GetEntries under a size limit against GetEntry one at a time"
    single

let ``mapped reads equal positioned reads, across cuts, an overwrite, a Save past the preallocated segment and a reopen``
    ()
    =
    use tmp = new TempDir()
    let mapped = WalOptions(SegmentSizeBytes = 16L * 1024L)
    let positioned = WalOptions(SegmentSizeBytes = 16L * 1024L, MapSegments = false)
    let mutable expected = Map.empty

    let written (entries: Entry list) =
        for e in entries do
            expected <- expected |> Map.filter (fun i _ -> i < e.Index)

        for e in entries do
            expected <- expected.Add(e.Index, shown e)

    do
        use log = RaftLog.Create(tmp.Path, mem "m", mapped)

        for i in 1UL .. 120UL do
            log.Append([| entry 1UL i |], HardState(1UL, 0UL, min (i - 1UL) 90UL))
            written [ entry 1UL i ]
            // Read at once: the tail is mapped while it is still preallocated, before the cut truncates it.
            Expect.equal (shown (log.GetEntry i)) expected[i] $"entry {i} read just after its Append"

        // raft's conflict rule: the suffix from 100 on is replaced.
        let overwrite = [ for i in 100UL .. 130UL -> entry 2UL i ]
        log.Append(overwrite, HardState(2UL, 0UL, 99UL))
        written overwrite
        // One Append of more than a segment: its frames run past the tail's preallocated length.
        let big =
            [
                for i in 131UL .. 140UL -> Entry(2UL, i, ReadOnlyMemory(Array.init 3000 (fun j -> byte (int i + j))))
            ]

        log.Append(big, HardState(2UL, 0UL, 120UL))
        written big
        let read = readEverything log
        Expect.equal read (expected |> Map.toList |> List.map snd) "the mapped log reads what was written"
        Expect.isNonEmpty (mappedSegments tmp.Root) "the segments read are mapped"

    Expect.isEmpty (mappedSegments tmp.Root) "Dispose unmaps every segment"

    let reopened (options: WalOptions) =
        use log = RaftLog.Open(tmp.Path, Snapshot.Zero, options)
        readEverything log

    let byPositionedReads = reopened positioned
    Expect.equal byPositionedReads (expected |> Map.toList |> List.map snd) "reopened, read with positioned reads"
    Expect.equal (reopened mapped) byPositionedReads "reopened, read from the mappings"

/// A varint, as protobuf writes it.
let private varint (value: uint64) =
    let rec go (v: uint64) acc =
        if v < 0x80UL then
            List.rev (byte v :: acc)
        else
            go (v >>> 7) (byte (v &&& 0x7FUL ||| 0x80UL) :: acc)

    go value [] |> Array.ofList

/// A frame holding entry `index` of `term` whose record and data run to `frameBytes` in all: a
/// well-formed entry, but longer than the file it is written into.
let private overlongEntryFrame (term: uint64) (index: uint64) (frameBytes: int) =
    let entryHead (data: int) =
        Array.concat
            [
                [| 0x08uy; 0uy; 0x10uy |]
                varint term
                [| 0x18uy |]
                varint index
                [| 0x22uy |]
                varint (uint64 data)
            ]

    let recordHead (data: int) =
        Array.concat [ [| 0x08uy; 2uy; 0x10uy; 0uy; 0x1Auy |]; varint (uint64 data) ]

    // The varints' lengths settle after a step or two as the sizes are solved for.
    let rec solve (payload: int) =
        let entry = (entryHead payload).Length + payload
        let record = (recordHead entry).Length + entry
        let excess = 8 + record - frameBytes
        if excess = 0 then payload else solve (payload - excess)

    let payload = solve (frameBytes - 40)
    let entryBytes = (entryHead payload).Length + payload

    let record =
        Array.concat [ recordHead entryBytes; entryHead payload; Array.create payload 7uy ]

    Array.append (BitConverter.GetBytes(int64 record.Length)) record

let ``a segment a cut truncates below its mapping reads on, and a frame damaged past the file's end is CorruptRecord``
    ()
    =
    use tmp = new TempDir()
    let bigSegments = 256L * 1024L
    let smallSegments = 64L * 1024L
    let data (i: uint64) = Array.create 500 (byte i)

    let append (log: RaftLog) (i: uint64) =
        log.Append([| Entry(1UL, i, ReadOnlyMemory(data i)) |], HardState(1UL, 0UL, i - 1UL))

    do
        use log =
            RaftLog.Create(tmp.Path, mem "m", WalOptions(SegmentSizeBytes = bigSegments))

        for i in 1UL .. 10UL do
            append log i

    // Reopened with smaller segments: the tail stays preallocated to 256 KiB and is mapped so, and
    // the cut at 64 KiB truncates it to its data, far below its mapping's end.
    use log =
        RaftLog.Open(tmp.Path, Snapshot.Zero, WalOptions(SegmentSizeBytes = smallSegments))

    let segments () =
        Directory.GetFiles(tmp.Path, "*.wal") |> Array.sort

    let mutable i = 10UL
    log.GetEntry 1UL |> ignore

    while (segments ()).Length < 2 do
        i <- i + 1UL
        append log i
        log.GetEntry i |> ignore

    let sealedSegment = (segments ())[0]
    let fileLength = FileInfo(sealedSegment).Length
    Expect.isLessThan fileLength (bigSegments - 64L * 1024L) "the cut truncated the first segment"

    Expect.equal
        (mappedSegments tmp.Root
         |> List.tryFind (fun (path, _) -> path.StartsWith sealedSegment)
         |> Option.map snd)
        (Some bigSegments)
        "the first segment's mapping runs far past the file's end now"

    for j in 1UL .. i do
        Expect.equal ((log.GetEntry j).Data.ToArray()) (data j) $"entry {j} after the cut"

    // The sealed segment's last entry is overwritten, under the running log, by a well-formed frame
    // of the same entry that runs 32 KiB past the file's end, inside the mapping. A read that
    // trusted the mapping would copy its data from pages past the end of the file, and SIGBUS
    // would end the process; the log reads from the mapping only below the end it knows.
    let entryFrames =
        framesOf (File.ReadAllBytes sealedSegment) |> List.filter (fun f -> f.Type = 2)

    let lastEntry = List.last entryFrames
    let lastIndex = uint64 entryFrames.Length

    do
        use file =
            new FileStream(sealedSegment, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite)

        file.Position <- int64 lastEntry.Offset

        let frame =
            overlongEntryFrame 1UL lastIndex (int (fileLength - int64 lastEntry.Offset) + 32 * 1024)
        // Only the bytes up to the file's end: the frame claims the rest.
        file.Write(frame, 0, int (fileLength - int64 lastEntry.Offset))

    Expect.equal (FileInfo(sealedSegment).Length) fileLength "the file's length is unchanged"

    Expect.equal
        (errorKind (fun () -> log.GetEntry lastIndex |> ignore))
        (Some WalErrorKind.CorruptRecord)
        "the damaged frame"

    Expect.equal ((log.GetEntry(lastIndex - 1UL)).Data.ToArray()) (data (lastIndex - 1UL)) "the entry before it"

let ``readers racing appends, cuts, CompactTo and Dispose on mapped segments read only what was written`` () =
    use tmp = new TempDir()
    let log = RaftLog.Create(tmp.Path, mem "m", WalOptions(SegmentSizeBytes = 4096L))
    let failures = Collections.Concurrent.ConcurrentBag<string>()
    let mutable reads = 0

    let reader (n: int) () =
        let random = Random n
        let mutable closed = false

        while not closed do
            try
                let first, last = log.FirstIndex, log.LastIndex

                if last >= first then
                    let lo = first + uint64 (random.NextInt64(int64 (last - first + 1UL)))
                    let hi = lo + 1UL + uint64 (random.NextInt64(int64 (min 40UL (last - lo + 1UL))))

                    for e in Seq.append [ log.GetEntry lo ] (log.GetEntries(lo, hi)) do
                        if shown e <> shown (entry 1UL e.Index) then
                            failures.Add $"entry {e.Index} read wrong"

                    Interlocked.Increment &reads |> ignore
            with :? WalException as ex ->
                match ex.Kind with
                | WalErrorKind.Closed -> closed <- true
                | WalErrorKind.Compacted
                | WalErrorKind.Unavailable -> ()
                | _ -> failures.Add ex.Message

    let threads = [ for n in 1..3 -> Thread(reader n) ]
    threads |> List.iter (fun t -> t.Start())

    try
        for i in 1UL .. 400UL do
            log.Append([| entry 1UL i |], HardState(1UL, 0UL, i))

            if i % 25UL = 0UL then
                log.SaveSnapshot(Snapshot(i - 10UL, 1UL))
                log.CompactTo(i - 10UL)
    finally
        // Readers are still reading: the files close, and the mappings go, once the last is out.
        log.Dispose()
        threads |> List.iter (fun t -> t.Join())

    Expect.isEmpty failures "every read is an entry as written"
    Expect.isGreaterThan reads 0 "the readers read"
    Expect.isLessThan (Directory.GetFiles(tmp.Path, "*.wal").Length) 10 "compactions removed segments"
    Expect.isEmpty (mappedSegments tmp.Root) "no mapping outlives the log"

let ``a reader inside a segment a compaction drops and removes reads on, and its release unmaps it`` () =
    use tmp = new TempDir()
    Directory.CreateDirectory tmp.Path |> ignore
    let path = Path.Combine(tmp.Path, "segment.wal")
    let bytes = Array.init 10000 (fun i -> byte (i % 251))
    File.WriteAllBytes(path, bytes)

    let segment =
        Wal.Log.LogSegment(
            Wal.Format.SegmentName(0UL, 0UL),
            "segment.wal",
            Wal.Storage.LinuxFileSystem.Instance.OpenFile(path, Wal.Storage.OpenMode.Read),
            true
        )

    segment.Extend 9000L
    // A reader comes in and maps the file; then the log lets go (a compaction) and the file is removed.
    Expect.isTrue (segment.TryAcquire()) "the reader's reference"
    Expect.equal ((segment.MappedFrom(100L, 50)).ToArray()) bytes[100..149] "mapped bytes"
    segment.Release()
    File.Delete path
    Expect.isNonEmpty (mappedSegments tmp.Root) "still mapped while the reader is inside"
    Expect.equal ((segment.MappedFrom(8990L, 50)).ToArray()) bytes[8990..8999] "read on, only below the known end"
    Expect.equal ((segment.MappedFrom(9000L, 50)).Length) 0 "nothing at or past the known end"
    segment.Release()
    Expect.isEmpty (mappedSegments tmp.Root) "the last release unmaps"
    Expect.isFalse (segment.TryAcquire()) "no reference after the last"

let ``readers on mapped segments, during appends, overwrites and compactions, each see a state the model went through``
    (scenario: Scenario)
    (seed: int)
    =
    use tmp = new TempDir()
    readersSeeModelStates tmp.Path (WalOptions(SegmentSizeBytes = scenario.SegmentSize)) scenario seed

/// This file's tests.
let tests =
    testList
        "RaftLogMapped"
        [
            testCase
                "mapped reads equal positioned reads, across cuts, an overwrite, a Save past the preallocated segment and a reopen"
                ``mapped reads equal positioned reads, across cuts, an overwrite, a Save past the preallocated segment and a reopen``
            testCase
                "a segment a cut truncates below its mapping reads on, and a frame damaged past the file's end is CorruptRecord"
                ``a segment a cut truncates below its mapping reads on, and a frame damaged past the file's end is CorruptRecord``
            testCase
                "a reader inside a segment a compaction drops and removes reads on, and its release unmaps it"
                ``a reader inside a segment a compaction drops and removes reads on, and its release unmaps it``
            testCase
                "readers racing appends, cuts, CompactTo and Dispose on mapped segments read only what was written"
                ``readers racing appends, cuts, CompactTo and Dispose on mapped segments read only what was written``
            testPropertyWithConfig
                (fsCheck 20 [ typeof<Clean> ])
                "readers on mapped segments, during appends, overwrites and compactions, each see a state the model went through"
                ``readers on mapped segments, during appends, overwrites and compactions, each see a state the model went through``
        ]
