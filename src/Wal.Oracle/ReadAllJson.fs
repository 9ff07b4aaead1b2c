/// ReadAll's outcome as one JSON line: what `wal dump --json` prints and what the etcd peer
/// (interop/etcd/peer) prints for etcd's own ReadAll, so the two can be compared field by field.
///
///   {"snapIndex":"0","snapTerm":"0","metadata":"<base64>","term":"1","vote":"1","commit":"10",
///    "entries":[{"term":"1","index":"1","type":0,"data":"<base64>"}],"error":null}
///
/// The 64-bit values (snapIndex, snapTerm, term, vote, commit, an entry's term and index) are
/// written as decimal strings, which no JSON reader rounds (jq 1.6 and JavaScript keep 53 bits
/// of a number: a vote of 3319814642761637952 would read as 3319814642761638000); the reader
/// takes numbers too, as older writers (and the driver protocol's drivers) give them.
/// `error` is null or an error kind's name (Wal.Core's WalErrorKind names). After an error other
/// than SnapshotNotFound (which etcd returns together with what it read) the contents are empty.
/// The schema knows no implementation: any WAL, in any language, can answer with it.
module Wal.Oracle.ReadAllJson

open System
open System.Buffers.Text
open System.Globalization
open System.IO
open System.Text
open System.Text.Json
open Wal.Model

/// An entry as the schema holds it; `Type` is raftpb.EntryType's number.
type DumpEntry =
    {
        Term: uint64
        Index: uint64
        Type: int
        Data: byte[]
    }

/// ReadAll's outcome at a snapshot: what was read, and the error, if any.
type Dump =
    {
        SnapIndex: uint64
        SnapTerm: uint64
        Metadata: byte[]
        Term: uint64
        Vote: uint64
        Commit: uint64
        Entries: DumpEntry list
        Error: string option
    }

/// A dump of nothing read at the snapshot `snapIndex`/`snapTerm`, without an error.
let empty (snapIndex: uint64) (snapTerm: uint64) =
    {
        SnapIndex = snapIndex
        SnapTerm = snapTerm
        Metadata = [||]
        Term = 0UL
        Vote = 0UL
        Commit = 0UL
        Entries = []
        Error = None
    }

/// An entry as the driver protocol's requests and the etcd peer's scripts give it: numbers as
/// JSON integers (what those readers take).
let writeEntry (w: Utf8JsonWriter) (term: uint64) (index: uint64) (kind: int) (data: byte[]) =
    w.WriteStartObject()
    w.WriteNumber("term", term)
    w.WriteNumber("index", index)
    w.WriteNumber("type", kind)
    w.WriteBase64String("data", ReadOnlySpan data)
    w.WriteEndObject()

let private names =
    {|
        SnapIndex = JsonEncodedText.Encode "snapIndex"
        SnapTerm = JsonEncodedText.Encode "snapTerm"
        Metadata = JsonEncodedText.Encode "metadata"
        Term = JsonEncodedText.Encode "term"
        Vote = JsonEncodedText.Encode "vote"
        Commit = JsonEncodedText.Encode "commit"
        Entries = JsonEncodedText.Encode "entries"
        Index = JsonEncodedText.Encode "index"
        Type = JsonEncodedText.Encode "type"
        Data = JsonEncodedText.Encode "data"
        Error = JsonEncodedText.Encode "error"
    |}

// A 64-bit value's digits, formatted without a string per value (a dump writes millions).
let private digits =
    new Threading.ThreadLocal<byte[]>(fun () -> Array.zeroCreate 20)

/// A 64-bit value as the schema writes it: a decimal string.
let private writeU64 (w: Utf8JsonWriter) (name: JsonEncodedText) (value: uint64) =
    let buffer = digits.Value
    let mutable written = 0
    Utf8Formatter.TryFormat(value, Span buffer, &written) |> ignore
    w.WriteString(name, ReadOnlySpan(buffer, 0, written))

/// Opens the document: the object, every field before the entries, and the entries' array.
let writeStart (w: Utf8JsonWriter) (dump: Dump) =
    w.WriteStartObject()
    writeU64 w names.SnapIndex dump.SnapIndex
    writeU64 w names.SnapTerm dump.SnapTerm
    w.WriteBase64String(names.Metadata, ReadOnlySpan dump.Metadata)
    writeU64 w names.Term dump.Term
    writeU64 w names.Vote dump.Vote
    writeU64 w names.Commit dump.Commit
    w.WriteStartArray(names.Entries)

// An entry's JSON around its values; its field names and values need no escaping (digits and
// base64), so it is built as bytes and handed to the writer whole: a dump writes millions.
let private entryParts =
    [| "{\"term\":\""; "\",\"index\":\""; "\",\"type\":"; ",\"data\":\""; "\"}" |]
    |> Array.map Encoding.ASCII.GetBytes

let private entryBuffer =
    new Threading.ThreadLocal<byte[]>(fun () -> Array.zeroCreate 256)

let private put (part: byte[]) (buffer: byte[]) (at: int) =
    // A span copy: Buffer.BlockCopy's checks cost more than these few bytes' copy.
    ReadOnlySpan(part).CopyTo(Span(buffer, at, part.Length))
    at + part.Length

let private putU64 (value: uint64) (buffer: byte[]) (at: int) =
    let mutable written = 0
    Utf8Formatter.TryFormat(value, Span(buffer, at, 20), &written) |> ignore
    at + written

/// One entry of the document's array, its term and index as strings:
/// `{"term":"1","index":"1","type":0,"data":"<base64>"}`.
let writeDumpEntry (w: Utf8JsonWriter) (term: uint64) (index: uint64) (kind: int) (data: ReadOnlySpan<byte>) =
    let need = 128 + Base64.GetMaxEncodedToUtf8Length data.Length

    // The thread-local is read once: a dump writes millions of entries.
    let mutable buffer = entryBuffer.Value

    if buffer.Length < need then
        buffer <- Array.zeroCreate (max need (2 * buffer.Length))
        entryBuffer.Value <- buffer

    let at = put entryParts[0] buffer 0 |> putU64 term buffer
    let at = put entryParts[1] buffer at |> putU64 index buffer
    let mutable typeBytes = 0
    let at = put entryParts[2] buffer at
    Utf8Formatter.TryFormat(kind, Span(buffer, at, 11), &typeBytes) |> ignore
    let at = put entryParts[3] buffer (at + typeBytes)
    let mutable consumed, encoded = 0, 0

    Base64.EncodeToUtf8(data, Span(buffer, at, buffer.Length - at), &consumed, &encoded)
    |> ignore

    let at = put entryParts[4] buffer (at + encoded)
    w.WriteRawValue(ReadOnlySpan(buffer, 0, at), skipInputValidation = true)

/// Closes the entries' array with the error, and the document.
let writeEnd (w: Utf8JsonWriter) (error: string option) =
    w.WriteEndArray()

    match error with
    | Some kind -> w.WriteString(names.Error, kind)
    | None -> w.WriteNull(names.Error)

    w.WriteEndObject()

/// One line of compact JSON, the schema's field order.
let render (dump: Dump) =
    use stream = new MemoryStream()

    do
        use w = new Utf8JsonWriter(stream)
        writeStart w dump

        for e in dump.Entries do
            writeDumpEntry w e.Term e.Index e.Type (ReadOnlySpan e.Data)

        writeEnd w dump.Error

    Encoding.UTF8.GetString(stream.ToArray())

/// Reads one line of the schema; a field missing or of the wrong type is an Error naming it.
let parse (json: string) : Result<Dump, string> =
    try
        use doc = JsonDocument.Parse(json)
        let root = doc.RootElement
        // A decimal string (what the schema writes) or a JSON integer (what older writers gave).
        let u64 (e: JsonElement) (name: string) =
            let v = e.GetProperty(name)

            if v.ValueKind = JsonValueKind.String then
                UInt64.Parse(v.GetString(), NumberStyles.None, CultureInfo.InvariantCulture)
            else
                v.GetUInt64()

        let bytes (e: JsonElement) (name: string) =
            e.GetProperty(name).GetBytesFromBase64()

        Ok
            {
                SnapIndex = u64 root "snapIndex"
                SnapTerm = u64 root "snapTerm"
                Metadata = bytes root "metadata"
                Term = u64 root "term"
                Vote = u64 root "vote"
                Commit = u64 root "commit"
                Entries =
                    [
                        for e in root.GetProperty("entries").EnumerateArray() ->
                            {
                                Term = u64 e "term"
                                Index = u64 e "index"
                                Type = e.GetProperty("type").GetInt32()
                                Data = bytes e "data"
                            }
                    ]
                Error =
                    match root.GetProperty("error") with
                    | e when e.ValueKind = JsonValueKind.Null -> None
                    | e -> Some(e.GetString())
            }
    with
    | :? JsonException as e -> Error $"not JSON: {e.Message}"
    | :? Collections.Generic.KeyNotFoundException as e -> Error $"a field is missing: {e.Message}"
    | :? InvalidOperationException as e -> Error $"a field has the wrong type: {e.Message}"
    | :? FormatException as e -> Error $"a field is malformed: {e.Message}"
    | :? OverflowException as e -> Error $"a number is 2^64 or more: {e.Message}"

/// A dump as the model's outcome, or the name of an error kind the model does not know
/// (corruption, a torn tail, I/O).
let toOutcome (dump: Dump) : Result<ReadOutcome, string> =
    let contents () =
        {
            Metadata = dump.Metadata
            State =
                {
                    Term = dump.Term
                    Vote = dump.Vote
                    Commit = dump.Commit
                }
            Entries =
                [
                    for e in dump.Entries ->
                        {
                            Term = e.Term
                            Index = e.Index
                            Kind = e.Type
                            Data = e.Data
                        }
                ]
        }

    match dump.Error with
    | None -> Result.Ok(Read(contents ()))
    | Some "SnapshotNotFound" -> Result.Ok(NotFound(contents ()))
    | Some "NoLog" -> Result.Ok NoLog
    | Some "SnapshotMismatch" -> Result.Ok(Failed SnapshotMismatch)
    | Some "MetadataConflict" -> Result.Ok(Failed MetadataConflict)
    | Some "SliceOutOfRange" -> Result.Ok(Failed SliceOutOfRange)
    | Some other -> Result.Error other
