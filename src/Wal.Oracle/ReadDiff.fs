/// What a read got wrong, as a person reads it: the differences between an observed read and
/// the allowed read closest to it (which field, which entry, the error kind), rather than both
/// printed whole (a 40 KB line of hex each).
[<RequireQualifiedAccess>]
module Wal.Oracle.ReadDiff

open System
open Wal.Model
open Wal.Oracle.Trace

let private hexPrefix (bytes: byte[]) =
    let shown = Convert.ToHexString(bytes, 0, min 16 bytes.Length).ToLowerInvariant()
    if bytes.Length > 16 then $"0x{shown}..." else $"0x{shown}"

/// How two byte strings differ: their lengths and the first byte that differs.
let private bytesDiffer (observed: byte[]) (allowed: byte[]) =
    let first =
        Seq.zip observed allowed
        |> Seq.tryFindIndex (fun (a, b) -> a <> b)
        |> Option.defaultValue (min observed.Length allowed.Length)

    $"{observed.Length} bytes {hexPrefix observed}, allowed {allowed.Length} bytes {hexPrefix allowed} (first difference at byte {first})"

let private entryDiff (position: int) (o: Entry) (a: Entry) =
    [
        if o.Index <> a.Index then
            $"entry {position + 1}: index {o.Index}, allowed {a.Index}"
        if o.Term <> a.Term then
            $"entry {a.Index}: term {o.Term}, allowed {a.Term}"
        if o.Kind <> a.Kind then
            $"entry {a.Index}: type {o.Kind}, allowed {a.Kind}"
        if o.Data <> a.Data then
            $"entry {a.Index}: data {bytesDiffer o.Data a.Data}"
    ]

let private contentsDiff (o: Contents) (a: Contents) =
    [
        if o.Metadata <> a.Metadata then
            $"metadata: {bytesDiffer o.Metadata a.Metadata}"
        if o.State.Term <> a.State.Term then
            $"term: {o.State.Term}, allowed {a.State.Term}"
        if o.State.Vote <> a.State.Vote then
            $"vote: {o.State.Vote}, allowed {a.State.Vote}"
        if o.State.Commit <> a.State.Commit then
            $"commit: {o.State.Commit}, allowed {a.State.Commit}"
        if o.Entries.Length <> a.Entries.Length then
            let last (es: Entry list) =
                es
                |> List.tryLast
                |> Option.map (fun e -> $", last index {e.Index}")
                |> Option.defaultValue ""

            $"entries: {o.Entries.Length}{last o.Entries}, allowed {a.Entries.Length}{last a.Entries}"
        yield!
            List.zip (List.truncate a.Entries.Length o.Entries) (List.truncate o.Entries.Length a.Entries)
            |> List.mapi (fun i (oe, ae) -> entryDiff i oe ae)
            |> List.concat
            |> List.truncate 5
    ]

let private kind (outcome: Observation) =
    match outcome with
    | Saw(Read _) -> "read"
    | Saw(NotFound _) -> "not-found (SnapshotNotFound)"
    | Saw(Failed k) -> $"error {k}"
    | Saw NoLog -> "no-log"
    | SawError k -> $"error {k}"

/// The differences between an observed read and one allowed outcome; empty when they agree.
let between (observed: Observation) (allowed: ReadOutcome) =
    match observed, allowed with
    | Saw(Read o), Read a
    | Saw(NotFound o), NotFound a -> contentsDiff o a
    | Saw(Read o | NotFound o), (Read a | NotFound a) ->
        $"outcome: {kind observed}, allowed {kind (Saw allowed)}" :: contentsDiff o a
    | o, a when o = Saw a -> []
    | _ -> [ $"outcome: {kind observed}, allowed {kind (Saw allowed)}" ]

/// Why the model rejects a read at a trace line: each allowed outcome in one short line, and the
/// differences from the closest of them (fewest differing fields).
let explain (line: int) (observed: Observation) (allowed: ReadOutcome list) =
    let summary (o: Observation) =
        match o with
        | Saw(Read c | NotFound c as outcome) ->
            let range =
                match c.Entries with
                | [] -> "no entries"
                | es -> $"entries {(List.head es).Index}..{(List.last es).Index}"

            $"{kind (Saw outcome)}: metadata {c.Metadata.Length} bytes, state {c.State.Term}/{c.State.Vote}/{c.State.Commit}, {range}"
        | other -> kind other

    let closest =
        allowed
        |> List.map (fun a -> a, between observed a)
        |> List.sortBy (snd >> List.length)
        |> List.tryHead

    let choices =
        allowed |> List.map (fun a -> "  " + summary (Saw a)) |> String.concat "\n"

    let differences =
        match closest with
        | Some(_, diffs) when not diffs.IsEmpty ->
            "\nagainst the closest allowed read:\n"
            + (diffs |> List.map (fun d -> "  " + d) |> String.concat "\n")
        | _ -> ""

    $"line {line}: the model does not allow\n  {summary observed}\nit allows\n{choices}{differences}"
