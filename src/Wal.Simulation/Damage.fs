/// Damage to durable bytes of a crash image (a flipped bit, a zeroed 512-byte sector), in the
/// last segment or an earlier one, judged by what recovery does next: a read must return what
/// the model allows, or a typed error after which Repair and a reopen keep every acknowledged
/// record or refuse again. Damage etcd's format cannot tell from a torn write or a legal log
/// (the reference decoder, Wal.Model.Segments, decides) is excused and counted.
module Wal.Simulation.Damage

open System
open Wal
open Wal.Model
open Wal.Simulation.Convert

/// What was done to the bytes.
type Harm =
    | FlippedBit of offset: int64 * bit: int
    | ZeroedSector of offset: int64

/// Damage to one segment of a crash image.
type Damage =
    {
        Segment: string
        /// Whether the segment is the last one (where etcd allows a torn write).
        Last: bool
        Harm: Harm
    }

    override this.ToString() =
        let where = if this.Last then "last" else "earlier"

        match this.Harm with
        | FlippedBit(offset, bit) -> $"bit {bit} of byte {offset} flipped in {this.Segment} ({where} segment)"
        | ZeroedSector offset -> $"512 bytes zeroed at {offset} in {this.Segment} ({where} segment)"

/// How a damaged image was judged.
type Verdict =
    /// Recovery did what the model allows.
    | Kept
    /// The damage is one etcd's format cannot see (a torn write to its decoder, a silent end, a
    /// retyped record): anything but a crash of the engine is allowed.
    | Blind
    /// Recovery did something the model does not allow, with why.
    | Broken of string

let private segmentsOf (fs: SimulatedFileSystem) =
    fs.List Harness.Directory
    |> List.filter (fun n -> n.EndsWith(".wal", StringComparison.Ordinal))
    |> List.map (fun n -> n, fs.ReadAllBytes(IO.Path.Combine(Harness.Directory, n)))

/// Where a segment's records end, by the reference decoder: damage beyond that lands in
/// preallocated zeros no reader looks at.
let private extentOf (decoded: Segments.Decoded) (name: string) (length: int) =
    decoded.Records
    |> List.filter (fun r -> r.Segment = name)
    |> List.fold (fun e r -> max e (r.Offset + 8L + int64 r.Data.Length + 24L)) 512L
    |> min (int64 length)

/// Damages one segment of a disk, chosen by `seed` (the last one or an earlier one, a bit flip
/// or a zeroed sector, within the bytes records use): the damaged disk and what was done, or
/// None when the disk holds no segment.
let damage (state: DiskState) (seed: int) : (DiskState * Damage) option =
    let fs = SimulatedFileSystem(state)

    match segmentsOf fs with
    | [] -> None
    | segments ->
        let random = Random seed
        let count = segments.Length

        let index =
            if count > 1 && random.Next 2 = 0 then
                random.Next(count - 1)
            else
                count - 1

        let name, bytes = segments[index]

        if bytes.Length = 0 then
            None
        else
            let extent = extentOf (Segments.decode segments) name bytes.Length
            let damaged = Array.copy bytes

            let harm =
                if random.Next 2 = 0 then
                    let offset = random.NextInt64 extent
                    let bit = random.Next 8
                    damaged[int offset] <- damaged[int offset] ^^^ (1uy <<< bit)
                    FlippedBit(offset, bit)
                else
                    let offset = random.NextInt64((extent + 511L) / 512L) * 512L
                    let stop = min (offset + 512L) (int64 bytes.Length)
                    Array.fill damaged (int offset) (int (stop - offset)) 0uy
                    ZeroedSector offset

            fs.WriteAllBytes(IO.Path.Combine(Harness.Directory, name), damaged)

            Some(
                fs.State,
                {
                    Segment = name
                    Last = (index = count - 1)
                    Harm = harm
                }
            )

/// Whether etcd's format cannot tell the damaged segments from a log as a crash or a legal
/// run leaves it: its decoder calls the damage a torn write, ends the log silently before the
/// damage, or reads the same frames with another type byte (outside the CRC).
let formatBlind (before: DiskState) (after: DiskState) =
    let decode state =
        Segments.decode (segmentsOf (SimulatedFileSystem(state)))

    let b = decode before
    let a = decode after
    let frame (r: Segments.RawRecord) = r.Segment, r.Offset, r.Crc, r.Data

    match a.Stop with
    | Segments.Torn _ -> true
    | Segments.CleanEnd when a.Records.Length < b.Records.Length -> true
    | _ ->
        a.Stop = b.Stop
        && a.Records.Length = b.Records.Length
        && List.map frame a.Records = List.map frame b.Records

let private attempt (action: unit -> EngineOutcome) =
    try
        action ()
    with :? WalException as ex ->
        OtherError(ex.Kind, ex.Message)

/// Reads the damaged disk as a reader beside the writer does (OpenForRead, ReadAll) and as
/// recovery does (Open, ReadAll; on a typed error Repair, then Open and ReadAll again), at `at`
/// (where raft opens: past a snapshot installed from a leader, a read from zero meets the gap
/// and would judge nothing), and judges both against `allowed` (the model's outcomes there for
/// the undamaged image).
let judge (segmentSize: int64) (at: Snapshot) (allowed: ReadOutcome list) (blind: bool) (damaged: DiskState) : Verdict =
    let fs = SimulatedFileSystem(damaged)
    let options = Harness.optionsFor fs segmentSize

    let allowedRead (where: string) (observed: EngineOutcome) =
        match observed with
        // A reader that starts at a later segment has no CRC chain to check that segment's start
        // against: damage there can hide the snapshot record or the entries before the next
        // segment, and SnapshotNotFound or SliceOutOfRange is the error a caller then gets (etcd's
        // server stops on either), not a wrong read. A read that returns is still judged.
        | Model(NotFound _ | Failed _) when at <> Snapshot.zero -> None
        | Model o when not (List.contains o allowed) && not blind ->
            let choices = allowed |> List.map ReadOutcome.describe |> String.concat "\n    or "
            Some $"{where} read\n    {ReadOutcome.describe o}\n  where the model allows\n    {choices}"
        | _ -> None

    let readMode () =
        attempt (fun () ->
            use reader =
                WriteAheadLog.OpenForRead(Harness.Directory, Wal.FSharp.ModelConvert.toSnapshot at, options)

            readOutcome reader)

    let writeMode () =
        let observed, opened = Harness.recoverWith false options at

        opened
        |> Option.iter (fun w ->
            try
                w.Dispose()
            with _ ->
                ())

        observed

    try
        match allowedRead "OpenForRead" (readMode ()) with
        | Some message -> Broken message
        | None ->
            match writeMode () with
            | OtherError(kind, _) ->
                // A typed error: recovery repairs what it can and reads again. Repair may refuse
                // (a typed error), and the read may refuse again; what it returns must keep every
                // acknowledged record.
                let repaired =
                    try
                        Ok(WalDirectory.Repair(Harness.Directory, options))
                    with :? WalException as ex ->
                        Error ex

                match repaired with
                | Error _ -> Kept
                | Ok outcome ->
                    match
                        allowedRead $"after Open failed with {kind}, Repair said {outcome} and Open" (writeMode ())
                    with
                    | Some message -> Broken message
                    | None -> if blind then Blind else Kept
            | observed ->
                match allowedRead "Open" observed with
                | Some message -> Broken message
                | None -> if blind then Blind else Kept
    with ex ->
        Broken $"the engine threw {ex.GetType().Name}: {ex.Message}"
