/// raftpb.Entry and raftpb.HardState as the engine decodes them from entry and state records,
/// against gogo-protobuf's generated Unmarshal in etcd 3.4: a table of cases, each with gogo's
/// verdict written out from protobuf's rules (fields in any order, the last repeated scalar
/// winning, unknown fields of every wire type skipped, groups included, the field number kept
/// in 32 bits); the Interop list holds the table to gogo's own verdicts through the peer, and
/// runs generated and damaged messages through both decoders.
module Wal.Properties.MessageDecodingTests

open Expecto
open FsCheck
open FsCheck.FSharp
open System
open Wal
open Wal.Format
open Wal.Properties.Support
open Wal.Properties.LogFixtures

/// One message and gogo's verdict on it, in the peer's words.
type Case =
    {
        Name: string
        Hex: string
        Gogo: string
    }

let private case name hex gogo = { Name = name; Hex = hex; Gogo = gogo }

/// raftpb.Entry: Type = 1, Term = 2, Index = 3 (varints), Data = 4 (bytes). Verdict "ok TERM INDEX TYPE DATAHEX".
let entryCases =
    [
        case "as etcd writes it" ("0800" + "1005" + "1807" + "2203616263") "ok 5 7 0 616263"
        case "fields in reverse order, data first" ("2203616263" + "1807" + "1005" + "0801") "ok 5 7 1 616263"
        case "a repeated term: the last wins" ("1005" + "1006" + "1801") "ok 6 1 0 "
        case "repeated data: the last wins" ("2201aa" + "2201bb") "ok 0 0 0 bb"
        case "an empty message" "" "ok 0 0 0 "
        case "an unknown varint field" ("1001" + "1801" + "282a") "ok 1 1 0 "
        case "an unknown fixed64 field" ("1001" + "310102030405060708" + "1801") "ok 1 1 0 "
        case "an unknown fixed32 field" ("3d01020304" + "1002") "ok 2 0 0 "
        case "an unknown bytes field" ("4a02aabb" + "1003") "ok 3 0 0 "
        case "an unknown fixed64 field last" ("1001" + "310102030405060708") "ok 1 0 0 "
        case "a group holding an empty bytes field" ("2b" + "4a00" + "2c" + "1001") "ok 1 0 0 "
        case
            "an unknown group, skipped with what it holds"
            ("1001" + "2b" + "0801" + "2201aa" + "2c" + "1802")
            "ok 1 2 0 "
        case "nested groups" ("2b" + "33" + "0801" + "34" + "2c" + "1003") "ok 3 0 0 "
        case "a group closed by another field's end tag" ("2b" + "0801" + "34" + "1004") "ok 4 0 0 "
        case "field 2^29, past protobuf's limit, is skipped" ("1001" + "8080808010" + "01") "ok 1 0 0 "
        case "field 2^32 + 2 is field 2 in 32 bits" ("908080808001" + "07") "ok 7 0 0 "
        case "field 2^31 is negative in 32 bits: an illegal tag" ("1001" + "8080808040" + "01") "invalid"
        case "a type above 2^32 keeps its low 32 bits" ("08" + "8180808010") "ok 0 0 1 "
        case "a term of 64 bits" ("10" + "ffffffffffffffffff01") "ok 18446744073709551615 0 0 "
        case "a varint of eleven bytes" ("10" + "ffffffffffffffffffff01") "invalid"
        case "field 0" ("1001" + "0200") "invalid"
        case "field 0 as a varint" "0000" "invalid"
        case "a tag cut short" ("1001" + "80") "truncated"
        case "a term cut short" "10ff" "truncated"
        case "data longer than the message" ("220561" + "62") "truncated"
        case "data with a negative length" ("22" + "ffffffffffffffffff01") "invalid"
        case "an unknown bytes field longer than the message" "4a0561" "truncated"
        case "a fixed64 cut short" ("1001" + "31010203") "truncated"
        case "a fixed32 cut short" "3d0102" "truncated"
        case "a group never closed" ("2b" + "0801") "truncated"
        case "an end-group tag outside a group" ("1001" + "2c") "invalid"
        case "wire type 6" "2e00" "invalid"
        case "wire type 7" "2f00" "invalid"
        case "a term sent as bytes" "1201aa" "invalid"
        case "data sent as a varint" "2001" "invalid"
        case "a type sent as fixed32" "0d01020304" "invalid"
        case "an index sent as a group" ("1b" + "1c") "invalid"
    ]

/// raftpb.HardState: Term = 1, Vote = 2, Commit = 3, all varints. Verdict "ok TERM VOTE COMMIT".
let stateCases =
    [
        case "as etcd writes it" ("0802" + "1001" + "1805") "ok 2 1 5"
        case "fields in reverse order" ("1805" + "1001" + "0802") "ok 2 1 5"
        case "an unknown bytes field" ("0802" + "2203aabbcc") "ok 2 0 0"
        case "an unknown group" ("2b" + "0801" + "2c" + "1803") "ok 0 0 3"
        case "a repeated commit: the last wins" ("1805" + "1802") "ok 0 0 2"
        case "a commit sent as bytes" "1a01aa" "invalid"
        case "a vote sent as fixed64" "110102030405060708" "invalid"
        case "a term cut short" "08" "truncated"
        case "field 0" "0000" "invalid"
        case "an unknown fixed32 cut short" ("0801" + "2d01") "truncated"
    ]

/// walpb.Snapshot as etcd 3.4 has it: Index = 1, Term = 2, both varints (3.5's conf_state, field
/// 3, is an unknown field to 3.4). Verdict "ok INDEX TERM".
let snapshotCases =
    [
        case "as etcd writes it" ("0805" + "1002") "ok 5 2"
        case "fields in reverse order" ("1002" + "0805") "ok 5 2"
        case "an empty message" "" "ok 0 0"
        case "a conf_state (etcd 3.5's field 3), which 3.4 skips" ("0805" + "1a020801" + "1002") "ok 5 2"
        case "a conf_state that does not decode, which 3.4 skips" ("0805" + "1a02ffff") "ok 5 0"
        case "a conf_state sent as a varint, which 3.4 skips" ("1801" + "1002") "ok 0 2"
        case "an unknown group" ("2b" + "0801" + "2c" + "0807") "ok 7 0"
        case "field 2^29, past protobuf's limit, is skipped" ("0805" + "8080808010" + "01") "ok 5 0"
        case "field 2^32 + 1 is field 1 in 32 bits" ("888080808001" + "09") "ok 9 0"
        case "a repeated term: the last wins" ("1002" + "1003") "ok 0 3"
        case "an index sent as bytes" "0a01aa" "invalid"
        case "a term sent as fixed64" "110102030405060708" "invalid"
        case "field 0" "0000" "invalid"
        case "an end-group tag outside a group" ("0805" + "2c") "invalid"
        case "an index cut short" "08" "truncated"
        case "a group never closed" ("0805" + "2b") "truncated"
    ]

/// walpb.Record: Type = 1, Crc = 2 (varints), Data = 3 (bytes); an unknown field goes through
/// gogo's skip function. Verdict "ok TYPE CRC DATAHEX", and the engine tells truncated from invalid too.
let recordCases =
    [
        case "as etcd writes it" ("0802" + "1005" + "1a0161") "ok 2 5 61"
        case "an unknown group last" ("0802" + "1005" + "2b" + "0801" + "2c") "ok 2 5 "
        case "an unknown bytes field whose length wraps past 2^63" ("0802" + "2a" + "ffffffffffffffff7f") "invalid"
        case "an unknown bytes field longer than the record" ("0802" + "2a05" + "61") "truncated"
        case "a group holding an empty bytes field" ("2b" + "2a00" + "2c" + "0803") "ok 3 0 "
    ]

let private hex (bytes: ReadOnlySpan<byte>) =
    Convert.ToHexString(bytes).ToLowerInvariant()

/// The engine's raftpb.Entry decoder in the peer's words.
let entryVerdict (input: byte[]) =
    let mutable term = 0UL
    let mutable index = 0UL
    let mutable kind = EntryType.Normal
    let mutable data = ReadOnlySpan<byte>.Empty

    if RecordCodec.TryParseEntry(ReadOnlySpan input, &term, &index, &kind, &data) then
        $"ok {term} {index} {int kind} {hex data}"
    else
        "refused"

/// The engine's raftpb.HardState decoder in the peer's words.
let stateVerdict (input: byte[]) =
    let mutable state = HardState()

    if RecordCodec.TryDecodeHardState(ReadOnlySpan input, &state) then
        $"ok {state.Term} {state.Vote} {state.Commit}"
    else
        "refused"

/// The engine's walpb.Snapshot decoder in the peer's words.
let snapshotVerdict (input: byte[]) =
    let mutable snapshot = Snapshot.Zero

    if RecordCodec.TryDecodeSnapshot(ReadOnlySpan input, &snapshot) then
        $"ok {snapshot.Index} {snapshot.Term}"
    else
        "refused"

/// The model's decoders (Wal.Model.Protobuf, which check-dir reads records with) in the peer's words.
module ModelVerdict =
    let private decoded (decode: byte[] -> int -> int -> Wal.Model.Protobuf.Fields voption) show (input: byte[]) =
        match decode input 0 input.Length with
        | ValueSome fields -> show input fields
        | ValueNone -> "refused"

    /// raftpb.Entry: "ok TERM INDEX TYPE DATAHEX", the type in 32 bits as Go's int32 prints it.
    let entry =
        decoded Wal.Model.Protobuf.entry (fun input f ->
            $"ok {f.F2} {f.F3} {int f.F1} {hex (ReadOnlySpan(input, f.BytesAt, f.BytesCount))}")

    /// raftpb.HardState: "ok TERM VOTE COMMIT".
    let state =
        decoded Wal.Model.Protobuf.hardState (fun _ f -> $"ok {f.F1} {f.F2} {f.F3}")

    /// walpb.Snapshot: "ok INDEX TERM".
    let snapshot = decoded Wal.Model.Protobuf.snapshot (fun _ f -> $"ok {f.F1} {f.F2}")

/// The engine answers only whether a message decodes: etcd's ReadAll panics on an entry or
/// state it cannot unmarshal, truncated or not, where the engine reports CorruptRecord.
let refusalsAsOne (verdict: string) =
    if verdict = "truncated" || verdict = "invalid" then
        "refused"
    else
        verdict

let private engineCase (decode: byte[] -> string) (c: Case) =
    testCase c.Name (fun () -> Expect.equal (decode (Convert.FromHexString c.Hex)) (refusalsAsOne c.Gogo) c.Hex)

/// A log holding entry 1, then one entry record whose data is `hex`.
let private logWithEntry (hex: string) =
    oneSegment (fun e -> encodeRaw e RecordType.Entry (Convert.FromHexString hex))

let ``ReadAll takes an entry written in another field order, with an unknown group`` () =
    // Index 2, term 1, data "b", type normal: the fields reversed and a group in the middle.
    let _, options =
        logWithEntry ("220162" + "2b" + "0801" + "2c" + "1802" + "1001" + "0800")

    let r = readWrite options Snapshot.Zero
    Expect.equal (indexes r) [ 1UL; 2UL ] ""
    Expect.equal ((Seq.last r.Entries).Data.ToArray()) (bytes "b") ""

/// check-dir (the model's DirectoryCheck) over a log holding entry 1 and then one record of
/// `kind` whose data is each case's message: it calls the record undecodable exactly where gogo
/// refuses the message, and ReadAll reports CorruptRecord there.
let private checkDirAgrees (kind: RecordType) (cases: Case list) =
    for c in cases do
        let fs, options =
            oneSegment (fun e -> encodeRaw e kind (Convert.FromHexString c.Hex))

        let file = fs.ReadAllBytes firstPath

        let undecodable =
            Wal.Model.DirectoryCheck.check [ firstSegment ] (fun _ -> int64 file.Length) (fun _ -> file)
            |> List.exists (function
                | Wal.Model.DirectoryCheck.UndecodablePayload _ -> true
                | _ -> false)

        let refused = refusalsAsOne c.Gogo = "refused"
        Expect.equal undecodable refused $"check-dir on {kind} {c.Name} ({c.Hex})"

        if refused then
            Expect.equal
                (errorKind (fun () -> readWrite options Snapshot.Zero |> ignore))
                (Some WalErrorKind.CorruptRecord)
                $"ReadAll on {kind} {c.Name}"

let ``ReadAll reports an entry gogo refuses as CorruptRecord`` () =
    for c in entryCases |> List.filter (fun c -> c.Gogo = "invalid" || c.Gogo = "truncated") do
        let _, options = logWithEntry c.Hex

        Expect.equal
            (errorKind (fun () -> readWrite options Snapshot.Zero |> ignore))
            (Some WalErrorKind.CorruptRecord)
            c.Name

// ---------------------------------------------------------------------------------------------
// Against gogo, through the peer

let private varint (value: uint64) =
    [|
        let mutable v = value

        while v >= 0x80UL do
            yield byte (v ||| 0x80UL)
            v <- v >>> 7

        yield byte v
    |]

let private tag (field: uint64) (wire: int) = varint ((field <<< 3) ||| uint64 wire)

/// A field of a message whose known fields are `known` (varint fields) and `bytesField`: known
/// fields with their own or another wire type, unknown ones of every wire type, groups holding
/// fields, and field numbers past protobuf's limit or 32 bits.
let private field (known: uint64 list) (bytesField: uint64 option) =
    let number =
        Gen.frequency
            [
                6, Gen.elements (known @ Option.toList bytesField)
                2, Gen.elements [ 5UL; 9UL; 15UL; 16UL; 2047UL ]
                1, Gen.elements [ 0UL; 1UL <<< 29; 1UL <<< 31; (1UL <<< 32) + 2UL; (1UL <<< 61) - 1UL ]
            ]

    let value =
        Gen.frequency
            [
                3, Gen.choose (0, 300) |> Gen.map uint64
                1, ArbMap.defaults |> ArbMap.generate<uint64>
            ]

    let payload =
        Gen.choose (0, 6)
        |> Gen.bind (fun n -> Gen.arrayOfLength n (Gen.choose (0, 255) |> Gen.map byte))

    let rec one depth =
        gen {
            let! n = number

            let natural =
                if Some n = bytesField then 2
                elif List.contains n known then 0
                else -1

            let! wire =
                Gen.frequency
                    [
                        (if natural >= 0 then 6 else 0), Gen.constant natural
                        3, Gen.elements [ 0; 1; 2; 5 ]
                        (if depth < 2 then 1 else 0), Gen.constant 3
                        1, Gen.elements [ 4; 6; 7 ]
                    ]

            match wire with
            | 0 ->
                let! v = value
                return Array.append (tag n 0) (varint v)
            | 1 -> return Array.append (tag n 1) (Array.init 8 byte)
            | 5 -> return Array.append (tag n 5) (Array.init 4 byte)
            | 2 ->
                let! p = payload
                return Array.concat [ tag n 2; varint (uint64 p.Length); p ]
            | 3 ->
                let! inner =
                    Gen.choose (0, 2) |> Gen.bind (fun k -> Gen.listOfLength k (one (depth + 1)))

                let! closer = Gen.elements [ n; 5UL ]
                return Array.concat [ yield tag n 3; yield! inner; yield tag closer 4 ]
            | w -> return tag n w
        }

    one 0

/// Messages built from those fields, then damaged now and then: a bit flipped, cut short, a byte put in.
let private messages (known: uint64 list) (bytesField: uint64 option) =
    let message =
        Gen.choose (0, 6)
        |> Gen.bind (fun n -> Gen.listOfLength n (field known bytesField))
        |> Gen.map Array.concat

    // Undamaged two times in five, as the record generator's damage leaves it one time in four.
    message
    |> Gen.bind (fun m -> Gen.frequency [ 1, Gen.constant m; 4, InteropProperties.damaged m ])
    |> Gen.listOfLength 200

type EntryMessages =
    static member Inputs() =
        Arb.fromGenShrink (
            messages [ 1UL; 2UL; 3UL ] (Some 4UL),
            Arb.toShrink (ArbMap.defaults |> ArbMap.arbitrary<byte[] list>)
        )

type StateMessages =
    static member Inputs() =
        Arb.fromGenShrink (
            messages [ 1UL; 2UL; 3UL ] None,
            Arb.toShrink (ArbMap.defaults |> ArbMap.arbitrary<byte[] list>)
        )

type SnapshotMessages =
    static member Inputs() =
        Arb.fromGenShrink (
            messages [ 1UL; 2UL ] (Some 3UL),
            Arb.toShrink (ArbMap.defaults |> ArbMap.arbitrary<byte[] list>)
        )

/// The model and the engine give each message the same verdict.
let private agree (kind: string) (engine: byte[] -> string) (model: byte[] -> string) (inputs: byte[] list) =
    inputs
    |> List.tryFind (fun input -> engine input <> model input)
    |> Option.iter (fun input ->
        failwith $"{kind} {Convert.ToHexString input}\n  engine: {engine input}\n  model:  {model input}")

let private agreeWithGogo (kind: string) (engine: byte[] -> string) (inputs: byte[] list) =
    let gogo = EtcdPeer.records kind inputs

    List.zip3 inputs gogo (inputs |> List.map engine)
    |> List.tryFind (fun (_, gogo, engine) -> refusalsAsOne (gogo.TrimEnd()) <> engine.TrimEnd())
    |> Option.iter (fun (input, gogo, engine) ->
        failwith $"{kind} {Convert.ToHexString input}\n  gogo:   {gogo}\n  engine: {engine}")

let private gogoAgreesWithTheTable (kind: string) (cases: Case list) =
    let gogo =
        EtcdPeer.records kind (cases |> List.map (fun c -> Convert.FromHexString c.Hex))

    for c, verdict in List.zip cases gogo do
        Expect.equal (verdict.TrimEnd()) (c.Gogo.TrimEnd()) $"{kind}: {c.Name} ({c.Hex})"

/// This file's tests that need no peer.
let tests =
    testList
        "MessageDecodingTests"
        [
            testList "raftpb.Entry" (entryCases |> List.map (engineCase entryVerdict))
            testList "raftpb.HardState" (stateCases |> List.map (engineCase stateVerdict))
            testList "walpb.Snapshot" (snapshotCases |> List.map (engineCase snapshotVerdict))
            testList
                "the model's decoders"
                [
                    testList "raftpb.Entry" (entryCases |> List.map (engineCase ModelVerdict.entry))
                    testList "raftpb.HardState" (stateCases |> List.map (engineCase ModelVerdict.state))
                    testList "walpb.Snapshot" (snapshotCases |> List.map (engineCase ModelVerdict.snapshot))
                ]
            testList
                "walpb.Record"
                (recordCases
                 |> List.map (fun c ->
                     testCase c.Name (fun () ->
                         Expect.equal (InteropProperties.engineVerdict (Convert.FromHexString c.Hex)) c.Gogo c.Hex)))
            testCase
                "ReadAll takes an entry written in another field order, with an unknown group"
                ``ReadAll takes an entry written in another field order, with an unknown group``
            testCase
                "ReadAll reports an entry gogo refuses as CorruptRecord"
                ``ReadAll reports an entry gogo refuses as CorruptRecord``
            testCase
                "check-dir calls an entry record undecodable where gogo refuses its message, and only there"
                (fun () -> checkDirAgrees RecordType.Entry entryCases)
            testCase
                "check-dir calls a state record undecodable where gogo refuses its message, and only there"
                (fun () -> checkDirAgrees RecordType.State stateCases)
            testCase
                "check-dir calls a snapshot record undecodable where gogo refuses its message, and only there"
                (fun () -> checkDirAgrees RecordType.Snapshot snapshotCases)
            testPropertyWithConfig
                (fsCheck 100 [ typeof<EntryMessages> ])
                "the model's raftpb.Entry decoder gives the engine's verdict on generated and damaged messages"
                (agree "entry" entryVerdict ModelVerdict.entry)
            testPropertyWithConfig
                (fsCheck 100 [ typeof<StateMessages> ])
                "the model's raftpb.HardState decoder gives the engine's verdict on generated and damaged messages"
                (agree "state" stateVerdict ModelVerdict.state)
            testPropertyWithConfig
                (fsCheck 100 [ typeof<SnapshotMessages> ])
                "the model's walpb.Snapshot decoder gives the engine's verdict on generated and damaged messages"
                (agree "snapshot" snapshotVerdict ModelVerdict.snapshot)
        ]

/// This file's tests that run gogo through the etcd peer.
let interop =
    testList
        "MessageDecodingInterop"
        [
            testCase "gogo gives every raftpb.Entry case the table's verdict" (fun () ->
                gogoAgreesWithTheTable "entry" entryCases)
            testCase "gogo gives every raftpb.HardState case the table's verdict" (fun () ->
                gogoAgreesWithTheTable "state" stateCases)
            testCase "gogo gives every walpb.Record case the table's verdict" (fun () ->
                gogoAgreesWithTheTable "record" recordCases)
            testCase "gogo gives every walpb.Snapshot case the table's verdict" (fun () ->
                gogoAgreesWithTheTable "snapshot" snapshotCases)
            testPropertyWithConfig
                (fsCheck 50 [ typeof<EntryMessages> ])
                "the engine's raftpb.Entry decoder gives gogo's verdict on generated and damaged messages"
                (agreeWithGogo "entry" entryVerdict)
            testPropertyWithConfig
                (fsCheck 50 [ typeof<StateMessages> ])
                "the engine's raftpb.HardState decoder gives gogo's verdict on generated and damaged messages"
                (agreeWithGogo "state" stateVerdict)
            testPropertyWithConfig
                (fsCheck 50 [ typeof<EntryMessages> ])
                "the model's raftpb.Entry decoder gives gogo's verdict on generated and damaged messages"
                (agreeWithGogo "entry" ModelVerdict.entry)
            testPropertyWithConfig
                (fsCheck 50 [ typeof<SnapshotMessages> ])
                "the engine's walpb.Snapshot decoder gives gogo's verdict on generated and damaged messages"
                (agreeWithGogo "snapshot" snapshotVerdict)
        ]
