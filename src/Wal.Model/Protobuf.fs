/// The protobuf inside etcd 3.4's WAL, read as gogo-protobuf's generated Unmarshal methods read
/// it, so that the model accepts and refuses exactly what etcd does (and what Wal.Core does; a
/// table of gogo's own verdicts holds both to it):
///
/// - a field's tag is a varint of at most ten bytes; its number is kept in 32 bits, so higher
///   bits are dropped and a number of 0, or one that wraps negative, is an illegal tag;
/// - fields come in any order and the last of a repeated scalar wins;
/// - a known field with another wire type than its own is refused, and so is an end-group tag
///   outside a group;
/// - an unknown field of every wire type is skipped, groups included (nested, and closed by any
///   end-group tag), and wire types 6 and 7 are refused;
/// - a field that runs past the message's end is Go's io.ErrUnexpectedEOF (Short); anything else
///   malformed is Bad.
///
/// Everything here reads in place: every record of a log of any size goes through it.
[<RequireQualifiedAccess>]
module Wal.Model.Protobuf

/// What `varintAt` and `skip` give as the next position when the bytes run out (Go's
/// io.ErrUnexpectedEOF).
[<Literal>]
let Short = -1L

/// What `varintAt` and `skip` give as the next position for malformed bytes: a varint of more
/// than ten bytes, a negative length, an illegal wire type.
[<Literal>]
let Bad = -2L

/// `varintAt` for a varint of any length.
let varintLoop (b: byte[]) (first: int) (n: int64) (pos: int64) : struct (uint64 * int64) =
    let mutable pos = pos
    let mutable shift = 0
    let mutable acc = 0UL
    let mutable result = struct (0UL, Short)
    let mutable going = true

    while going do
        if shift >= 64 then
            result <- struct (0UL, Bad)
            going <- false
        elif pos >= n then
            going <- false
        else
            let x = b[first + int pos]
            acc <- acc ||| (uint64 (x &&& 0x7Fuy) <<< shift)

            if x < 0x80uy then
                result <- struct (acc, pos + 1L)
                going <- false
            else
                pos <- pos + 1L
                shift <- shift + 7

    result

/// The varint at `pos` of the `n` bytes at `first` in `b`: its value and the position after it
/// (from `first`), or a next position of `Short` or `Bad`. Most of a WAL's varints are one byte
/// (field tags, types, terms, lengths), and those are read here; longer ones by `varintLoop`.
let inline varintAt (b: byte[]) (first: int) (n: int64) (pos: int64) : struct (uint64 * int64) =
    if pos < n && b[first + int pos] < 0x80uy then
        struct (uint64 b[first + int pos], pos + 1L)
    else
        varintLoop b first n pos

/// Skips the unknown field whose tag is at `pos` of the `n` bytes at `first` in `b`, as gogo's
/// skip functions do: the position after it, or `Short` or `Bad`. Fixed-width and
/// length-delimited fields are skipped by arithmetic, so the position may lie past `n`, which the
/// caller checks (Short). Go recurses into groups; this counts them, so nesting cannot exhaust
/// the stack.
let skip (b: byte[]) (first: int) (n: int64) (pos: int64) : int64 =
    let mutable pos = pos
    let mutable depth = 0
    let mutable result = 0L
    let mutable going = true

    while going do
        match varintAt b first n pos with
        | struct (_, next) when next < 0L ->
            result <- next
            going <- false
        | struct (tag, next) ->
            let after =
                match int (tag &&& 7UL) with
                | 0 ->
                    let struct (_, p) = varintAt b first n next
                    p
                | 1 -> next + 8L
                | 2 ->
                    match varintAt b first n next with
                    | struct (_, p) when p < 0L -> p
                    | struct (len, p) ->
                        // Go holds the length in an int: a negative one, or an end that wraps, is refused.
                        let e = p + int64 len
                        if int64 len < 0L || e < 0L then Bad else e
                | 3 ->
                    depth <- depth + 1
                    next
                | 4 ->
                    depth <- max 0 (depth - 1)
                    next
                | 5 -> next + 4L
                | _ -> Bad

            if after < 0L then
                result <- after
                going <- false
            elif depth = 0 then
                result <- after
                going <- false
            elif after >= n then
                // A group still open at the message's end.
                result <- Short
                going <- false
            else
                pos <- after

    result

/// The fields of an etcd message whose known fields are varints numbered 1 to `varints` and, if
/// `bytesField` is above 0, one bytes field: the last value of each varint (0 when absent) and
/// where the bytes lie in `b` (at `first` with length 0 when absent).
[<Struct>]
type Fields =
    {
        F1: uint64
        F2: uint64
        F3: uint64
        BytesAt: int
        BytesCount: int
    }

/// The message as etcd's marshallers write it: the varints 1 to `varints` once each, in order,
/// each tag one byte, then, when there is data, the bytes field `bytesField` running to the
/// message's end. Every entry and hard state of a log comes this way, so this layout is read
/// straight; anything else (None) goes through `byRules`, which reads these bytes the same way.
let private asWritten (varints: int) (bytesField: int) (b: byte[]) (first: int) (count: int) : Fields voption =
    let n = int64 count

    // Varint field `field` at `pos` with its one-byte tag: its value and the position after it;
    // a negative position once the layout is not etcd's.
    let inline varintField (field: int) (pos: int64) =
        if pos >= 0L && pos < n && int b[first + int pos] = (field <<< 3) then
            varintAt b first n (pos + 1L)
        else
            struct (0UL, -1L)

    let struct (f1, p1) = varintField 1 0L

    let struct (f2, p2) = if varints >= 2 then varintField 2 p1 else struct (0UL, p1)

    let struct (f3, pos) = if varints >= 3 then varintField 3 p2 else struct (0UL, p2)

    // Where the bytes field lies: (first, 0) when absent, (-1, 0) when the layout is not etcd's.
    let struct (bytesAt, bytesCount) =
        if pos = n then
            struct (first, 0)
        elif
            pos > 0L
            && bytesField > 0
            && int b[first + int pos] = ((bytesField <<< 3) ||| 2)
        then
            match varintAt b first n (pos + 1L) with
            | struct (len, start) when start > 0L && len = uint64 (n - start) -> struct (first + int start, int len)
            | _ -> struct (-1, 0)
        else
            struct (-1, 0)

    if bytesAt < 0 then
        ValueNone
    else
        ValueSome
            {
                F1 = f1
                F2 = f2
                F3 = f3
                BytesAt = bytesAt
                BytesCount = bytesCount
            }

/// gogo's rules for a message of `count` bytes at `first` in `b`, whose known fields are the
/// varints 1 to `varints` (at most 3) and the bytes field `bytesField` (0 for none): the fields,
/// or None when gogo refuses the message.
let private byRules (varints: int) (bytesField: int) (b: byte[]) (first: int) (count: int) : Fields voption =
    let n = int64 count
    let mutable pos = 0L
    let mutable f1 = 0UL
    let mutable f2 = 0UL
    let mutable f3 = 0UL
    let mutable bytesAt = first
    let mutable bytesCount = 0
    let mutable ok = true

    while ok && pos < n do
        match varintAt b first n pos with
        | struct (_, after) when after < 0L -> ok <- false
        | struct (tag, after) ->
            let wire = int (tag &&& 7UL)
            let field = int (tag >>> 3)

            if wire = 4 || field <= 0 then
                ok <- false
            elif field <= varints then
                match varintAt b first n after with
                | struct (_, next) when wire <> 0 || next < 0L -> ok <- false
                | struct (v, next) ->
                    match field with
                    | 1 -> f1 <- v
                    | 2 -> f2 <- v
                    | _ -> f3 <- v

                    pos <- next
            elif field = bytesField then
                match varintAt b first n after with
                | struct (_, start) when wire <> 2 || start < 0L -> ok <- false
                | struct (len, start) when len > uint64 (n - start) -> ok <- false
                | struct (len, start) ->
                    bytesAt <- first + int start
                    bytesCount <- int len
                    pos <- start + int64 len
            else
                match skip b first n pos with
                | next when next < 0L || next > n -> ok <- false
                | next -> pos <- next

    if ok then
        ValueSome
            {
                F1 = f1
                F2 = f2
                F3 = f3
                BytesAt = bytesAt
                BytesCount = bytesCount
            }
    else
        ValueNone

/// gogo's rules for the message, the layout etcd writes read straight.
let private message (varints: int) (bytesField: int) (b: byte[]) (first: int) (count: int) : Fields voption =
    match asWritten varints bytesField b first count with
    | ValueSome fields -> ValueSome fields
    | ValueNone -> byRules varints bytesField b first count

/// raftpb.Entry {1: Type, 2: Term, 3: Index, 4: Data}: F1 the type, F2 the term, F3 the index,
/// and the data; None where gogo's Entry.Unmarshal fails.
let entry (b: byte[]) (first: int) (count: int) = message 3 4 b first count

/// raftpb.HardState {1: Term, 2: Vote, 3: Commit}; None where gogo's HardState.Unmarshal fails.
let hardState (b: byte[]) (first: int) (count: int) = message 3 0 b first count

/// walpb.Snapshot as etcd 3.4 has it, {1: Index, 2: Term} (3.5's conf_state, field 3, is an
/// unknown field to 3.4 and skipped); None where gogo's Snapshot.Unmarshal fails.
let snapshot (b: byte[]) (first: int) (count: int) = message 2 0 b first count
