/// Active patterns that take Wal.Core's values apart in a match. Opening `Wal.FSharp` brings
/// them in; they are named after the types they match, so `Entry(term, index, _, data)` reads
/// as the constructor call `Entry(term, index, data)` does.
[<AutoOpen>]
module Wal.FSharp.Patterns

open System
open System.Text
open Wal

/// An entry as (term, index, type, data).
let (|Entry|) (entry: Wal.Entry) =
    entry.Term, entry.Index, entry.Type, entry.Data

/// A hard state as (term, vote, commit).
let (|HardState|) (state: Wal.HardState) = state.Term, state.Vote, state.Commit

/// A snapshot marker as (index, term): index first, as the constructor takes them.
let (|Snapshot|) (snapshot: Wal.Snapshot) = snapshot.Index, snapshot.Term

/// What ReadAll read as (metadata, state, entries), the entries as an F# list.
let (|Contents|) (contents: ReadAllResult) =
    contents.Metadata, contents.State, List.ofSeq contents.Entries

/// Bytes (an entry's data, the metadata) as a fresh array.
let (|Bytes|) (data: ReadOnlyMemory<byte>) = data.ToArray()

/// Bytes (an entry's data, the metadata) decoded as UTF-8.
let (|Utf8|) (data: ReadOnlyMemory<byte>) = Encoding.UTF8.GetString data.Span
