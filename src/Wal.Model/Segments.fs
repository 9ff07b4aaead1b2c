/// A reference decoder for etcd-format WAL segments, written apart from Wal.Core's (which a
/// property holds it equal to).
///
/// A segment is a run of frames: an 8-byte little-endian length word (low 56 bits the record's
/// length; top bit set when the top byte's low 3 bits give 1-7 bytes of padding), then a
/// walpb.Record {1: int64 type, 2: uint32 crc, 3: bytes data}. A zero length word ends the
/// data (preallocated space). The CRC-32C of every record's data is chained from the previous
/// record's; a Crc record carries the chain's value at the start of each segment.
module Wal.Model.Segments

open System
open System.Buffers.Binary
open System.Numerics
open System.Runtime.CompilerServices

/// A record as it lies in a segment.
type RawRecord =
    {
        /// The segment file's name.
        Segment: string
        /// Where the record's frame starts in it.
        Offset: int64
        /// walpb.Record's type (RecordType).
        Type: int64
        /// walpb.Record's crc.
        Crc: uint32
        /// walpb.Record's data.
        Data: byte[]
    }

/// Why decoding stopped.
type Stop =
    /// Every segment's data ended cleanly.
    | CleanEnd
    /// The last segment ends in a torn or truncated record (etcd's io.ErrUnexpectedEOF).
    | Torn of segment: string * offset: int64
    /// A record's CRC does not match the chain.
    | CrcMismatch of segment: string * offset: int64
    /// A record cannot be decoded (or a frame is cut short outside the last segment).
    | Corrupt of segment: string * offset: int64
    /// A length word claims 10 MiB or more (etcd 3.4's ErrMaxWALEntrySizeLimitExceeded).
    | TooLarge of segment: string * offset: int64

/// The records decoded, in order, and why decoding stopped.
type Decoded = { Records: RawRecord list; Stop: Stop }

/// Record types (walpb): metadata 1, entry 2, state 3, crc 4, snapshot 5.
[<RequireQualifiedAccess>]
module RecordType =
    let metadata = 1L
    let entry = 2L
    let state = 3L
    let crc = 4L
    let snapshot = 5L

let private maxFrameBody = 10L * 1024L * 1024L
let private sector = 512L

/// A struct: every record is parsed, and a log of millions of records should not allocate one each.
[<Struct>]
type private Parse =
    /// The type, the crc, and where the data lies (offset, length) in the segment's bytes.
    | Parsed of typ: int64 * crc: uint32 * dataAt: int * dataBytes: int
    | Short
    | Bad

/// walpb.Record as etcd's marshaller writes it: field 1, field 2 and, when there is data, field 3
/// running to the record's end, once each in that order. Every record goes through the decoder,
/// so this layout is read straight; anything else (None) goes through `parseAnyRecord`'s general
/// rules, which read these bytes the same way.
let private parseAsWritten (segment: byte[]) (first: int) (length: int) : Parse voption =
    let n = int64 length

    if n >= 4L && segment[first] = 0x08uy then
        match Protobuf.varintAt segment first n 1L with
        | struct (typ, p) when p > 0L && p < n && segment[first + int p] = 0x10uy ->
            match Protobuf.varintAt segment first n (p + 1L) with
            | struct (crc, p) when p = n -> ValueSome(Parsed(int64 typ, uint32 crc, first, 0))
            | struct (crc, p) when p > 0L && segment[first + int p] = 0x1auy ->
                match Protobuf.varintAt segment first n (p + 1L) with
                | struct (len, start) when start > 0L && len = uint64 (n - start) ->
                    ValueSome(Parsed(int64 typ, uint32 crc, first + int start, int len))
                | _ -> ValueNone
            | _ -> ValueNone
        | _ -> ValueNone
    else
        ValueNone

/// gogo-protobuf's rules for walpb.Record, over the record's `length` bytes at `first` in `segment`:
/// a field running past the end is Short (Go's io.ErrUnexpectedEOF), anything else malformed is Bad.
let private parseAnyRecord (segment: byte[]) (first: int) (length: int) : Parse =
    let n = int64 length

    let failed (next: int64) =
        if next = Protobuf.Short then Short else Bad

    let rec fields (pos: int64) (typ: int64) (crc: uint32) (data: struct (int * int)) =
        if pos >= n then
            let struct (start, count) = data
            Parsed(typ, crc, start, count)
        else
            match Protobuf.varintAt segment first n pos with
            | struct (_, after) when after < 0L -> failed after
            | struct (tag, after) ->
                let wire = int (tag &&& 7UL)
                let field = int (tag >>> 3)

                if wire = 4 || field <= 0 then
                    Bad
                else
                    match field with
                    | 1
                    | 2 when wire <> 0 -> Bad
                    | 1 ->
                        match Protobuf.varintAt segment first n after with
                        | struct (_, next) when next < 0L -> failed next
                        | struct (v, next) -> fields next (int64 v) crc data
                    | 2 ->
                        match Protobuf.varintAt segment first n after with
                        | struct (_, next) when next < 0L -> failed next
                        | struct (v, next) -> fields next typ (uint32 v) data
                    | 3 when wire <> 2 -> Bad
                    | 3 ->
                        match Protobuf.varintAt segment first n after with
                        | struct (_, start) when start < 0L -> failed start
                        | struct (len, start) ->
                            let stop = start + int64 len

                            if int64 len < 0L || stop < 0L then
                                Bad
                            elif stop > n then
                                Short
                            else
                                fields stop typ crc (struct (first + int start, int len))
                    | _ ->
                        match Protobuf.skip segment first n pos with
                        | next when next < 0L -> failed next
                        | next when next > n -> Short
                        | next -> fields next typ crc data

    fields 0L 0L 0u (struct (first, 0))

/// gogo-protobuf's rules for walpb.Record, the layout etcd writes read straight.
let private parseRecord (segment: byte[]) (first: int) (length: int) : Parse =
    match parseAsWritten segment first length with
    | ValueSome parsed -> parsed
    | ValueNone -> parseAnyRecord segment first length

/// CRC-32C as Go's hash/crc32 computes it (inverted before and after) over `count` bytes at
/// `first`: eight bytes a step on the hardware instruction (little-endian, as the byte-at-a-time
/// definition reads them), then the last four, two and one.
let private crc32cOver (chain: uint32) (bytes: byte[]) (first: int) (count: int) =
    let mutable c = ~~~chain
    let mutable rest = ReadOnlySpan(bytes, first, count)

    while rest.Length >= 8 do
        c <- BitOperations.Crc32C(c, BinaryPrimitives.ReadUInt64LittleEndian rest)
        rest <- rest.Slice 8

    if rest.Length >= 4 then
        c <- BitOperations.Crc32C(c, BinaryPrimitives.ReadUInt32LittleEndian rest)
        rest <- rest.Slice 4

    if rest.Length >= 2 then
        c <- BitOperations.Crc32C(c, BinaryPrimitives.ReadUInt16LittleEndian rest)
        rest <- rest.Slice 2

    if rest.Length = 1 then
        c <- BitOperations.Crc32C(c, rest[0])

    ~~~c

/// CRC-32C as Go's hash/crc32 computes it (inverted before and after).
let crc32c (chain: uint32) (data: byte[]) = crc32cOver chain data 0 data.Length

/// etcd's torn-write test: some 512-byte sector of the failing frame's body (`count` bytes at
/// `first` in the segment, which is where the body lies in the file) is all zeros.
let private torn (bytes: byte[]) (first: int) (count: int) =
    let rec go (pos: int64) =
        if pos >= int64 count then
            false
        else
            let chunk = min (sector - (int64 first + pos) % sector) (int64 count - pos)

            if ReadOnlySpan(bytes, first + int pos, int chunk).IndexOfAnyExcept(0uy) < 0 then
                true
            else
                go (pos + chunk)

    go 0L

/// A record where it lies: its data is `DataBytes` bytes at `DataAt` in `Bytes`, the segment's
/// own bytes, so that a caller walking a log of any size copies nothing per record. Valid only
/// while the segment is being decoded. (Not a record type: its field names would shadow RawRecord's.)
[<Struct; NoEquality; NoComparison>]
type internal RecordAt
    (segment: string, offset: int64, recordType: int64, crc: uint32, bytes: byte[], dataAt: int, dataBytes: int) =
    member _.Segment = segment
    member _.Offset = offset
    member _.Type = recordType
    member _.Crc = crc
    member _.Bytes = bytes
    member _.DataAt = dataAt
    member _.DataBytes = dataBytes

    /// The record, its data copied out of the segment.
    member _.ToRaw() : RawRecord =
        {
            Segment = segment
            Offset = offset
            Type = recordType
            Crc = crc
            Data = bytes[dataAt .. dataAt + dataBytes - 1]
        }

/// The records of one segment, each visited in place, from the chain `chain` on: the chain
/// after them, and why they stop unless the segment ends cleanly. A function of its own, never
/// inlined, so that nothing on its stack keeps the segment's bytes alive once it returns.
[<MethodImpl(MethodImplOptions.NoInlining)>]
let private segmentRecords (visit: RecordAt -> unit) (name: string) (bytes: byte[]) (last: bool) (chain: uint32) =
    let mutable chain = chain
    let mutable stopped = ValueNone
    let size = int64 bytes.Length
    // A frame cut short: a torn write in the last segment, damage anywhere else.
    let short (offset: int64) =
        if last then Torn(name, offset) else Corrupt(name, offset)

    let mutable offset = 0L
    let mutable reading = true

    while reading do
        if offset >= size then
            reading <- false
        elif size - offset < 8L then
            stopped <- ValueSome(short offset)
            reading <- false
        else
            let word =
                BinaryPrimitives.ReadUInt64LittleEndian(ReadOnlySpan(bytes, int offset, 8))

            if word = 0UL then
                reading <- false
            else
                let length = int64 (word &&& 0x00FFFFFFFFFFFFFFUL)

                let pad =
                    if word &&& 0x8000000000000000UL <> 0UL then
                        int64 ((word >>> 56) &&& 7UL)
                    else
                        0L

                if length + pad >= maxFrameBody then
                    stopped <- ValueSome(TooLarge(name, offset))
                    reading <- false
                elif length + pad > size - offset - 8L then
                    stopped <- ValueSome(short offset)
                    reading <- false
                else
                    let bodyAt = int offset + 8
                    let bodyBytes = int (length + pad)

                    match parseRecord bytes bodyAt (int length) with
                    | Parsed(typ, crc, dataAt, dataBytes) ->
                        let chained =
                            if typ = RecordType.crc then
                                chain
                            else
                                crc32cOver chain bytes dataAt dataBytes
                        // A Crc record must carry the chain's value (unless no chain has begun), then becomes it.
                        let ok =
                            if typ = RecordType.crc then
                                chain = 0u || crc = chain
                            else
                                crc = chained

                        if not ok then
                            stopped <-
                                ValueSome(
                                    if typ <> RecordType.crc && last && torn bytes bodyAt bodyBytes then
                                        Torn(name, offset)
                                    else
                                        CrcMismatch(name, offset)
                                )

                            reading <- false
                        else
                            chain <- (if typ = RecordType.crc then crc else chained)
                            visit (RecordAt(name, offset, typ, crc, bytes, dataAt, dataBytes))
                            offset <- offset + 8L + length + pad
                    | Short ->
                        stopped <-
                            ValueSome(
                                if last && torn bytes bodyAt bodyBytes then
                                    Torn(name, offset)
                                else
                                    short offset
                            )

                        reading <- false
                    | Bad ->
                        stopped <-
                            ValueSome(
                                if last && torn bytes bodyAt bodyBytes then
                                    Torn(name, offset)
                                else
                                    Corrupt(name, offset)
                            )

                        reading <- false

    struct (chain, stopped)

/// Decodes segments in order (name, and a function that reads its bytes when its turn comes),
/// checking the CRC chain and handing each record, in place, to `visit`; returns etcd's
/// classification of where and why the data stops. Only the last segment can hold a torn
/// write. One segment's bytes are held at a time. The loops are imperative, and nothing is
/// allocated per record: a log of ten million records goes through it.
let internal scan (visit: RecordAt -> unit) (segments: (string * (unit -> byte[])) list) : Stop =
    let segments = Array.ofList segments
    let count = segments.Length
    let mutable chain = 0u
    let mutable stopped = ValueNone
    let mutable i = 0
    // Outside the loop, so that the segment before is let go before the next one is read.
    let mutable bytes: byte[] = null

    while stopped.IsNone && i < count do
        let name, load = segments[i]
        bytes <- null
        bytes <- load ()
        let struct (after, stop) = segmentRecords visit name bytes (i = count - 1) chain
        chain <- after
        stopped <- stop
        i <- i + 1

    stopped |> ValueOption.defaultValue CleanEnd

/// Decodes segments in order (name, and a function that reads its bytes when its turn comes),
/// checking the CRC chain, folding each record into the state; returns the state and etcd's
/// classification of where and why the data stops. Only the last segment can hold a torn
/// write. One segment's bytes are held at a time.
let fold (folder: 'State -> RawRecord -> 'State) (state: 'State) (segments: (string * (unit -> byte[])) list) =
    let acc = ref state
    let stop = scan (fun r -> acc.Value <- folder acc.Value (r.ToRaw())) segments
    acc.Value, stop

/// Decodes segments in order (name, bytes): the records, and why decoding stopped.
let decode (segments: (string * byte[]) list) : Decoded =
    let records, stop =
        segments
        |> List.map (fun (name, bytes) -> name, (fun () -> bytes))
        |> fold (fun acc r -> r :: acc) []

    {
        Records = List.rev records
        Stop = stop
    }
