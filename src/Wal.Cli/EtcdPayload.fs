/// What etcd's server stores in a WAL, decoded for `wal dump` (as etcd-dump-logs shows it):
/// normal entries holding an InternalRaftRequest (put, range, delete range, txn, compaction,
/// leases, alarms, auth) or a v2 Request, conf-change entries (ConfChange and ConfChangeV2),
/// and the metadata's node and cluster ids. A payload is taken as one of etcd's messages only
/// when it decodes with nothing left over; anything else is shown as its bytes, never an error.
module Wal.Cli.EtcdPayload

open System
open System.Text
open Google.Protobuf
open Wal
open Wal.Etcd.Protos

/// A decoded payload: its kind (what `--type` selects) and a one-line description.
type Payload = { Kind: string; Text: string }

/// The kinds `--type` takes besides `normal` and `conf`, which select by entry type.
let requestKinds =
    [
        "put"
        "range"
        "delete-range"
        "txn"
        "compaction"
        "lease-grant"
        "lease-revoke"
        "lease-checkpoint"
        "alarm"
        "auth"
        "v2"
        "empty"
        "unknown"
    ]

/// A member, lease or cluster id as etcd prints them (types.ID): lower-case hex, no padding.
let hexId (id: uint64) = id.ToString "x"

/// A short preview of bytes: quoted text when it reads as text, hex otherwise.
let preview (data: ReadOnlySpan<byte>) =
    let max = 32
    let shown = data.Slice(0, min max data.Length)
    let more = if data.Length > max then "..." else ""

    if shown.Length > 0 && shown.IndexOfAnyExceptInRange(0x20uy, 0x7euy) < 0 then
        "\"" + Encoding.ASCII.GetString shown + "\"" + more
    else
        Convert.ToHexString(shown).ToLowerInvariant() + more

/// Bytes as a quoted string, Go's %q in spirit: printable ASCII as is, the rest as \xNN; long
/// values are cut at 64 bytes and say how long they were.
let quote (bytes: ReadOnlySpan<byte>) =
    let limit = 64
    let sb = StringBuilder("\"")

    for b in bytes.Slice(0, min limit bytes.Length) do
        match char b with
        | '"' -> sb.Append "\\\"" |> ignore
        | '\\' -> sb.Append "\\\\" |> ignore
        | c when b >= 0x20uy && b < 0x7fuy -> sb.Append c |> ignore
        | _ -> sb.Append $"\\x{b:x2}" |> ignore

    sb.Append('"') |> ignore

    if bytes.Length > limit then
        sb.Append($"...({bytes.Length} bytes)") |> ignore

    sb.ToString()

let private q (b: ByteString) = quote b.Span

let private qs (s: string) =
    quote (ReadOnlySpan(Encoding.UTF8.GetBytes s))

/// Whether `data` reads as protobuf fields of the wire types proto3 messages use (varint,
/// fixed64, length-delimited, fixed32), each within the data. What fails this either fails to
/// parse or holds a group, an unknown field `strict` refuses anyway: so it is refused without
/// the parser's exception, which costs more than the rest of a dump's row (a log of text
/// payloads took 14 µs a row).
let private wellFormed (data: byte[]) =
    let rec varint (pos: int) (shift: int) =
        if shift >= 70 || pos >= data.Length then -1
        elif data[pos] < 0x80uy then pos + 1
        else varint (pos + 1) (shift + 7)

    let rec fields (pos: int) =
        if pos = data.Length then
            true
        elif data[pos] < 8uy then
            // A one-byte tag of field 0 (a longer tag of field 0 is left to the parser).
            false
        else
            let after = varint pos 0

            if after < 0 then
                false
            else
                match int (data[pos] &&& 7uy) with
                | 0 ->
                    let next = varint after 0
                    next >= 0 && fields next
                | 1 -> after + 8 <= data.Length && fields (after + 8)
                | 5 -> after + 4 <= data.Length && fields (after + 4)
                | 2 ->
                    let start = varint after 0

                    if start < 0 || start - after > 5 then
                        false
                    else
                        let mutable length = 0L

                        for i in start - 1 .. -1 .. after do
                            length <- (length <<< 7) ||| int64 (data[i] &&& 0x7Fuy)

                        length <= int64 (data.Length - start) && fields (start + int length)
                | _ -> false

    fields 0

/// Parses only when every byte is a known field: the message re-encodes to the same length
/// once unknown fields are dropped (etcd's marshallers write canonical encodings).
let private strict (parser: MessageParser<'T>) (data: byte[]) : 'T option =
    if not (wellFormed data) then
        None
    else
        try
            let m = parser.WithDiscardUnknownFields(true).ParseFrom data

            if (m :> IMessage).CalculateSize() = data.Length then
                Some m
            else
                None
        with :? InvalidProtocolBufferException ->
            None

let private join (parts: string list) =
    parts |> List.filter (String.IsNullOrEmpty >> not) |> String.concat " "

let private opt (name: string) (value: int64) =
    if value <> 0L then $"{name}={value}" else ""

let private flag (name: string) (set: bool) = if set then name else ""

let private rangeEnd (b: ByteString) =
    if b.IsEmpty then "" else $"range_end={q b}"

let private range (r: RangeRequest) =
    join
        [
            "range"
            $"key={q r.Key}"
            rangeEnd r.RangeEnd
            opt "limit" r.Limit
            opt "revision" r.Revision
            (if r.SortOrder <> RangeRequest.Types.SortOrder.None then
                 $"sort={r.SortOrder}/{r.SortTarget}"
             else
                 "")
            flag "serializable" r.Serializable
            flag "keys_only" r.KeysOnly
            flag "count_only" r.CountOnly
            opt "min_mod_revision" r.MinModRevision
            opt "max_mod_revision" r.MaxModRevision
            opt "min_create_revision" r.MinCreateRevision
            opt "max_create_revision" r.MaxCreateRevision
        ]

let private put (p: PutRequest) =
    join
        [
            "put"
            $"key={q p.Key}"
            $"value={q p.Value}"
            (if p.Lease <> 0L then
                 $"lease={hexId (uint64 p.Lease)}"
             else
                 "")
            flag "prev_kv" p.PrevKv
            flag "ignore_value" p.IgnoreValue
            flag "ignore_lease" p.IgnoreLease
        ]

let private deleteRange (d: DeleteRangeRequest) =
    join
        [
            "delete-range"
            $"key={q d.Key}"
            rangeEnd d.RangeEnd
            flag "prev_kv" d.PrevKv
        ]

let private compare (c: Compare) =
    let op =
        match c.Result with
        | Compare.Types.CompareResult.Equal -> "="
        | Compare.Types.CompareResult.Greater -> ">"
        | Compare.Types.CompareResult.Less -> "<"
        | Compare.Types.CompareResult.NotEqual -> "!="
        | other -> string other

    let target, value =
        match c.TargetUnionCase with
        | Compare.TargetUnionOneofCase.Version -> "version", string c.Version
        | Compare.TargetUnionOneofCase.CreateRevision -> "create", string c.CreateRevision
        | Compare.TargetUnionOneofCase.ModRevision -> "mod", string c.ModRevision
        | Compare.TargetUnionOneofCase.Value -> "value", q c.Value
        | Compare.TargetUnionOneofCase.Lease -> "lease", hexId (uint64 c.Lease)
        | _ -> (string c.Target).ToLowerInvariant(), "0"

    let over = if c.RangeEnd.IsEmpty then "" else $"..{q c.RangeEnd}"
    $"{target}({q c.Key}{over}) {op} {value}"

let rec private requestOp (o: RequestOp) =
    match o.RequestCase with
    | RequestOp.RequestOneofCase.RequestRange -> range o.RequestRange
    | RequestOp.RequestOneofCase.RequestPut -> put o.RequestPut
    | RequestOp.RequestOneofCase.RequestDeleteRange -> deleteRange o.RequestDeleteRange
    | RequestOp.RequestOneofCase.RequestTxn -> txn o.RequestTxn
    | _ -> "nothing"

and private txn (t: TxnRequest) =
    let list (items: string seq) = "[" + String.Join("; ", items) + "]"

    $"txn if {list (Seq.map compare t.Compare)} then {list (Seq.map requestOp t.Success)} else {list (Seq.map requestOp t.Failure)}"

let private v2 (r: Request) =
    join
        [
            "v2"
            r.Method
            qs r.Path
            (if r.Val <> "" then $"val={qs r.Val}" else "")
            flag "dir" r.Dir
            (if r.PrevValue <> "" then
                 $"prev_value={qs r.PrevValue}"
             else
                 "")
            (if r.PrevIndex <> 0UL then
                 $"prev_index={r.PrevIndex}"
             else
                 "")
            (if r.HasPrevExist then $"prev_exist={r.PrevExist}" else "")
            opt "expiration" r.Expiration
            flag "recursive" r.Recursive
            flag "quorum" r.Quorum
            flag "refresh" (r.HasRefresh && r.Refresh)
        ]

/// The InternalRaftRequest's one request, by kind; None when it carries none.
let private internalRequest (r: InternalRaftRequest) =
    let auth text = Some("auth", text)

    match r with
    | _ when r.Put <> null -> Some("put", put r.Put)
    | _ when r.Range <> null -> Some("range", range r.Range)
    | _ when r.DeleteRange <> null -> Some("delete-range", deleteRange r.DeleteRange)
    | _ when r.Txn <> null -> Some("txn", txn r.Txn)
    | _ when r.Compaction <> null ->
        Some(
            "compaction",
            join
                [
                    $"compaction revision={r.Compaction.Revision}"
                    flag "physical" r.Compaction.Physical
                ]
        )
    | _ when r.LeaseGrant <> null ->
        Some("lease-grant", $"lease-grant id={hexId (uint64 r.LeaseGrant.ID)} ttl={r.LeaseGrant.TTL}s")
    | _ when r.LeaseRevoke <> null -> Some("lease-revoke", $"lease-revoke id={hexId (uint64 r.LeaseRevoke.ID)}")
    | _ when r.LeaseCheckpoint <> null ->
        let each =
            r.LeaseCheckpoint.Checkpoints
            |> Seq.map (fun c -> $"{hexId (uint64 c.ID)}:{c.RemainingTTL}s")

        Some("lease-checkpoint", "lease-checkpoint " + String.Join(" ", each))
    | _ when r.Alarm <> null -> Some("alarm", $"alarm {r.Alarm.Action} {r.Alarm.Alarm} member={hexId r.Alarm.MemberID}")
    | _ when r.V2 <> null -> Some("v2", v2 r.V2)
    | _ when r.AuthEnable <> null -> auth "auth-enable"
    | _ when r.AuthDisable <> null -> auth "auth-disable"
    | _ when r.Authenticate <> null -> auth $"authenticate name={qs r.Authenticate.Name}"
    | _ when r.AuthUserAdd <> null ->
        auth (
            join
                [
                    $"user-add name={qs r.AuthUserAdd.Name}"
                    flag "no_password" (r.AuthUserAdd.Options <> null && r.AuthUserAdd.Options.NoPassword)
                ]
        )
    | _ when r.AuthUserDelete <> null -> auth $"user-delete name={qs r.AuthUserDelete.Name}"
    | _ when r.AuthUserGet <> null -> auth $"user-get name={qs r.AuthUserGet.Name}"
    | _ when r.AuthUserChangePassword <> null -> auth $"user-change-password name={qs r.AuthUserChangePassword.Name}"
    | _ when r.AuthUserGrantRole <> null ->
        auth $"user-grant-role user={qs r.AuthUserGrantRole.User} role={qs r.AuthUserGrantRole.Role}"
    | _ when r.AuthUserRevokeRole <> null ->
        auth $"user-revoke-role name={qs r.AuthUserRevokeRole.Name} role={qs r.AuthUserRevokeRole.Role}"
    | _ when r.AuthUserList <> null -> auth "user-list"
    | _ when r.AuthRoleList <> null -> auth "role-list"
    | _ when r.AuthRoleAdd <> null -> auth $"role-add name={qs r.AuthRoleAdd.Name}"
    | _ when r.AuthRoleDelete <> null -> auth $"role-delete role={qs r.AuthRoleDelete.Role}"
    | _ when r.AuthRoleGet <> null -> auth $"role-get role={qs r.AuthRoleGet.Role}"
    | _ when r.AuthRoleGrantPermission <> null ->
        let p = r.AuthRoleGrantPermission

        let perm =
            if isNull p.Perm then
                ""
            else
                join [ $"perm={p.Perm.PermType}"; $"key={q p.Perm.Key}"; rangeEnd p.Perm.RangeEnd ]

        auth (join [ $"role-grant-permission name={qs p.Name}"; perm ])
    | _ when r.AuthRoleRevokePermission <> null ->
        let p = r.AuthRoleRevokePermission

        auth (
            join
                [
                    $"role-revoke-permission role={qs p.Role}"
                    $"key={q p.Key}"
                    rangeEnd p.RangeEnd
                ]
        )
    | _ -> None

let private changeType (t: ConfChangeType) =
    match t with
    | ConfChangeType.ConfChangeAddNode -> "add-node"
    | ConfChangeType.ConfChangeRemoveNode -> "remove-node"
    | ConfChangeType.ConfChangeUpdateNode -> "update-node"
    | ConfChangeType.ConfChangeAddLearnerNode -> "add-learner"
    | other -> $"type-{int other}"

let private context (b: ByteString) =
    if b.IsEmpty then "" else $"context={preview b.Span}"

/// A normal entry's payload: etcd's InternalRaftRequest, else a v2 Request (as etcd's server
/// tries them), else its bytes.
let normal (data: byte[]) =
    if data.Length = 0 then
        { Kind = "empty"; Text = "empty" }
    else
        let internalRaft =
            strict InternalRaftRequest.Parser data |> Option.bind internalRequest

        match internalRaft with
        | Some(kind, text) -> { Kind = kind; Text = text }
        | None ->
            match strict Request.Parser data with
            | Some r when r.HasMethod && r.HasPath -> { Kind = "v2"; Text = v2 r }
            | _ ->
                {
                    Kind = "unknown"
                    Text = preview (ReadOnlySpan data)
                }

/// A conf-change entry's payload: raftpb.ConfChange (or ConfChangeV2 for that entry type), else its bytes.
let confChange (entryType: EntryType) (data: byte[]) =
    let text =
        if entryType = EntryType.ConfChangeV2 then
            strict ConfChangeV2.Parser data
            |> Option.map (fun c ->
                let changes =
                    c.Changes |> Seq.map (fun s -> $"{changeType s.Type} {hexId s.NodeId}")

                let transition =
                    match c.Transition with
                    | ConfChangeTransition.Auto -> "auto"
                    | ConfChangeTransition.JointImplicit -> "joint-implicit"
                    | ConfChangeTransition.JointExplicit -> "joint-explicit"
                    | other -> $"transition-{int other}"

                join
                    [
                        $"v2 {transition}"
                        "[" + String.Join(", ", changes) + "]"
                        context c.Context
                    ])
        else
            strict ConfChange.Parser data
            |> Option.filter (fun c -> c.HasType)
            |> Option.map (fun c -> join [ changeType c.Type; hexId c.NodeId; context c.Context ])

    {
        Kind = "conf"
        Text = text |> Option.defaultWith (fun () -> preview (ReadOnlySpan data))
    }

/// An entry's payload, by its type.
let entry (e: Entry) =
    match e.Type with
    | EntryType.Normal -> normal (e.Data.ToArray())
    | t -> confChange t (e.Data.ToArray())

/// A membership with its ids in hex, leaving out what is empty.
let confState (cs: ConfState) =
    let ids (name: string) (list: uint64 seq) =
        if Seq.isEmpty list then
            ""
        else
            $"""{name}=[{String.Join(",", Seq.map hexId list)}]"""

    join
        [
            ids "voters" cs.Voters
            ids "learners" cs.Learners
            ids "voters_outgoing" cs.VotersOutgoing
            ids "learners_next" cs.LearnersNext
            flag "auto_leave" cs.AutoLeave
        ]

/// The WAL's metadata: etcd's node and cluster ids in hex, else the bytes.
let metadata (data: byte[]) =
    match strict Metadata.Parser data with
    | Some m when m.HasNodeID && m.HasClusterID -> $"node={hexId m.NodeID} cluster={hexId m.ClusterID}"
    | _ -> preview (ReadOnlySpan data)
