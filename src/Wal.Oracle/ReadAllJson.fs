/// ReadAll's outcome as one JSON line: what `wal dump --json` prints and what the etcd peer
/// (interop/etcd/peer) prints for etcd's own ReadAll, so the two can be compared field by field.
///
///   {"snapIndex":0,"snapTerm":0,"metadata":"<base64>","term":1,"vote":1,"commit":10,
///    "entries":[{"term":1,"index":1,"type":0,"data":"<base64>"}],"error":null}
///
/// `error` is null or an error kind's name (Wal.Core's WalErrorKind names). After an error other
/// than SnapshotNotFound (which etcd returns together with what it read) the contents are empty.
/// The schema knows no implementation: any WAL, in any language, can answer with it.
module Wal.Oracle.ReadAllJson

open System
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

/// An entry as the schema (and the etcd peer's scripts) write it.
let writeEntry (w: Utf8JsonWriter) (term: uint64) (index: uint64) (kind: int) (data: byte[]) =
    w.WriteStartObject()
    w.WriteNumber("term", term)
    w.WriteNumber("index", index)
    w.WriteNumber("type", kind)
    w.WriteBase64String("data", ReadOnlySpan data)
    w.WriteEndObject()

/// One line of compact JSON, the schema's field order.
let render (dump: Dump) =
    use stream = new MemoryStream()

    do
        use w = new Utf8JsonWriter(stream)
        w.WriteStartObject()
        w.WriteNumber("snapIndex", dump.SnapIndex)
        w.WriteNumber("snapTerm", dump.SnapTerm)
        w.WriteBase64String("metadata", ReadOnlySpan dump.Metadata)
        w.WriteNumber("term", dump.Term)
        w.WriteNumber("vote", dump.Vote)
        w.WriteNumber("commit", dump.Commit)
        w.WriteStartArray("entries")

        for e in dump.Entries do
            writeEntry w e.Term e.Index e.Type e.Data

        w.WriteEndArray()

        match dump.Error with
        | Some kind -> w.WriteString("error", kind)
        | None -> w.WriteNull("error")

        w.WriteEndObject()

    Encoding.UTF8.GetString(stream.ToArray())

/// Reads one line of the schema; a field missing or of the wrong type is an Error naming it.
let parse (json: string) : Result<Dump, string> =
    try
        use doc = JsonDocument.Parse(json)
        let root = doc.RootElement
        let u64 (e: JsonElement) (name: string) = e.GetProperty(name).GetUInt64()

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
