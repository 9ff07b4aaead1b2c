/// The payload decoder of `wal dump` (Wal.Cli.EtcdPayload) on messages built here with
/// Google.Protobuf from the project's own .proto files of etcd's messages: every request kind
/// reads as etcd-dump-logs would show it, ids are hex, and no bytes make it fail.
module Wal.Properties.EtcdPayloadTests

open System
open Expecto
open FsCheck
open FsCheck.FSharp
open Google.Protobuf
open Wal
open Wal.Etcd.Protos
open Wal.Cli
open Wal.Properties.Support

let private bs (s: string) = ByteString.CopyFromUtf8 s

let private decode (r: InternalRaftRequest) =
    r.Header <- RequestHeader(ID = 0x1234UL)
    r.ID <- 7UL
    EtcdPayload.normal (r.ToByteArray())

let private expectPayload (kind: string) (text: string) (p: EtcdPayload.Payload) =
    Expect.equal (p.Kind, p.Text) (kind, text) ""

let private randomBytes =
    Gen.arrayOf (Gen.choose (0, 255) |> Gen.map byte) |> Arb.fromGen

type RandomBytes =
    static member Bytes() = randomBytes

let tests =
    testList
        "EtcdPayloadTests"
        [
            test "range, delete-range and put with their options" {
                InternalRaftRequest(Range = RangeRequest(Key = bs "a", RangeEnd = bs "b", Limit = 10L, KeysOnly = true))
                |> decode
                |> expectPayload "range" "range key=\"a\" range_end=\"b\" limit=10 keys_only"

                InternalRaftRequest(DeleteRange = DeleteRangeRequest(Key = bs "k", RangeEnd = bs "l", PrevKv = true))
                |> decode
                |> expectPayload "delete-range" "delete-range key=\"k\" range_end=\"l\" prev_kv"

                InternalRaftRequest(
                    Put =
                        PutRequest(
                            Key = ByteString.CopyFrom [| 0uy; 0x22uy; 0xffuy |],
                            Value = bs "v",
                            Lease = 0x694d77aa9e38260fL
                        )
                )
                |> decode
                |> expectPayload "put" "put key=\"\\x00\\\"\\xff\" value=\"v\" lease=694d77aa9e38260f"
            }

            test "a txn with compares of every target and a nested txn" {
                let txn = TxnRequest()

                txn.Compare.Add(
                    Compare(
                        Key = bs "a",
                        Target = Compare.Types.CompareTarget.Mod,
                        Result = Compare.Types.CompareResult.Greater,
                        ModRevision = 5L
                    )
                )

                txn.Compare.Add(Compare(Key = bs "b", Target = Compare.Types.CompareTarget.Version, Version = 0L))

                txn.Compare.Add(
                    Compare(
                        Key = bs "c",
                        Target = Compare.Types.CompareTarget.Lease,
                        Result = Compare.Types.CompareResult.NotEqual,
                        Lease = 255L
                    )
                )

                let inner = TxnRequest()
                inner.Success.Add(RequestOp(RequestDeleteRange = DeleteRangeRequest(Key = bs "x")))
                txn.Success.Add(RequestOp(RequestPut = PutRequest(Key = bs "a", Value = bs "1")))
                txn.Success.Add(RequestOp(RequestTxn = inner))
                txn.Failure.Add(RequestOp(RequestRange = RangeRequest(Key = bs "a")))

                InternalRaftRequest(Txn = txn)
                |> decode
                |> expectPayload
                    "txn"
                    "txn if [mod(\"a\") > 5; version(\"b\") = 0; lease(\"c\") != ff] then [put key=\"a\" value=\"1\"; txn if [] then [delete-range key=\"x\"] else []] else [range key=\"a\"]"
            }

            test "compaction, leases and alarms" {
                InternalRaftRequest(Compaction = CompactionRequest(Revision = 99L, Physical = true))
                |> decode
                |> expectPayload "compaction" "compaction revision=99 physical"

                InternalRaftRequest(LeaseRevoke = LeaseRevokeRequest(ID = 0x2040a21573b0b823L))
                |> decode
                |> expectPayload "lease-revoke" "lease-revoke id=2040a21573b0b823"

                let checkpoint = LeaseCheckpointRequest()
                checkpoint.Checkpoints.Add(LeaseCheckpoint(ID = 16L, RemainingTTL = 30L))

                InternalRaftRequest(LeaseCheckpoint = checkpoint)
                |> decode
                |> expectPayload "lease-checkpoint" "lease-checkpoint 10:30s"

                InternalRaftRequest(
                    Alarm =
                        AlarmRequest(
                            Action = AlarmRequest.Types.AlarmAction.Activate,
                            Alarm = AlarmType.Nospace,
                            MemberID = 0x2e1259d415f2a040UL
                        )
                )
                |> decode
                |> expectPayload "alarm" "alarm Activate Nospace member=2e1259d415f2a040"
            }

            test "every auth request is kind auth, and no password is shown" {
                let cases =
                    [
                        InternalRaftRequest(AuthEnable = AuthEnableRequest()), "auth-enable"
                        InternalRaftRequest(AuthDisable = AuthDisableRequest()), "auth-disable"
                        InternalRaftRequest(
                            Authenticate = InternalAuthenticateRequest(Name = "u", Password = "pw", SimpleToken = "t")
                        ),
                        "authenticate name=\"u\""
                        InternalRaftRequest(AuthUserAdd = AuthUserAddRequest(Name = "u", Password = "pw")),
                        "user-add name=\"u\""
                        InternalRaftRequest(AuthUserDelete = AuthUserDeleteRequest(Name = "u")),
                        "user-delete name=\"u\""
                        InternalRaftRequest(AuthUserGet = AuthUserGetRequest(Name = "u")), "user-get name=\"u\""
                        InternalRaftRequest(
                            AuthUserChangePassword = AuthUserChangePasswordRequest(Name = "u", Password = "pw")
                        ),
                        "user-change-password name=\"u\""
                        InternalRaftRequest(AuthUserGrantRole = AuthUserGrantRoleRequest(User = "u", Role = "r")),
                        "user-grant-role user=\"u\" role=\"r\""
                        InternalRaftRequest(AuthUserRevokeRole = AuthUserRevokeRoleRequest(Name = "u", Role = "r")),
                        "user-revoke-role name=\"u\" role=\"r\""
                        InternalRaftRequest(AuthUserList = AuthUserListRequest()), "user-list"
                        InternalRaftRequest(AuthRoleList = AuthRoleListRequest()), "role-list"
                        InternalRaftRequest(AuthRoleAdd = AuthRoleAddRequest(Name = "r")), "role-add name=\"r\""
                        InternalRaftRequest(AuthRoleDelete = AuthRoleDeleteRequest(Role = "r")),
                        "role-delete role=\"r\""
                        InternalRaftRequest(AuthRoleGet = AuthRoleGetRequest(Role = "r")), "role-get role=\"r\""
                        InternalRaftRequest(
                            AuthRoleGrantPermission =
                                AuthRoleGrantPermissionRequest(
                                    Name = "r",
                                    Perm =
                                        Permission(
                                            PermType = Permission.Types.Type.Readwrite,
                                            Key = bs "a",
                                            RangeEnd = bs "z"
                                        )
                                )
                        ),
                        "role-grant-permission name=\"r\" perm=Readwrite key=\"a\" range_end=\"z\""
                        InternalRaftRequest(
                            AuthRoleRevokePermission = AuthRoleRevokePermissionRequest(Role = "r", Key = bs "a")
                        ),
                        "role-revoke-permission role=\"r\" key=\"a\""
                    ]

                for request, text in cases do
                    let p = decode request
                    expectPayload "auth" text p
                    Expect.isFalse (p.Text.Contains "pw") text
            }

            test "a v2 Request, bare (as etcd 3.3 wrote) or inside an InternalRaftRequest" {
                // gogo writes every non-nullable field of the proto2 Request, defaults included.
                let r =
                    Request(
                        ID = 1UL,
                        Method = "PUT",
                        Path = "/0/version",
                        Val = "3.4.0",
                        Dir = false,
                        PrevValue = "",
                        PrevIndex = 0UL,
                        Expiration = 0L,
                        Wait = false,
                        Since = 0UL,
                        Recursive = false,
                        Sorted = false,
                        Quorum = false,
                        Time = 0L,
                        Stream = false
                    )

                EtcdPayload.normal (r.ToByteArray())
                |> expectPayload "v2" "v2 PUT \"/0/version\" val=\"3.4.0\""

                InternalRaftRequest(V2 = r)
                |> decode
                |> expectPayload "v2" "v2 PUT \"/0/version\" val=\"3.4.0\""
            }

            test "conf changes: ConfChange and ConfChangeV2, ids in hex" {
                let cc =
                    ConfChange(Id = 0UL, Type = ConfChangeType.ConfChangeRemoveNode, NodeId = 0x2e1259d415f2a040UL)

                EtcdPayload.confChange EntryType.ConfChange (cc.ToByteArray())
                |> expectPayload "conf" "remove-node 2e1259d415f2a040"

                let v2 =
                    ConfChangeV2(Transition = ConfChangeTransition.JointExplicit, Context = bs "ctx")

                v2.Changes.Add(ConfChangeSingle(Type = ConfChangeType.ConfChangeAddLearnerNode, NodeId = 3UL))
                v2.Changes.Add(ConfChangeSingle(Type = ConfChangeType.ConfChangeAddNode, NodeId = 0xffUL))

                EtcdPayload.confChange EntryType.ConfChangeV2 (v2.ToByteArray())
                |> expectPayload "conf" "v2 joint-explicit [add-learner 3, add-node ff] context=\"ctx\""
            }

            test "metadata: etcd's node and cluster ids in hex, anything else as its bytes" {
                let m = Metadata(NodeID = 0x2e1259d415f2a040UL, ClusterID = 0x48276a8f75b6a87UL)
                Expect.equal (EtcdPayload.metadata (m.ToByteArray())) "node=2e1259d415f2a040 cluster=48276a8f75b6a87" ""
                Expect.equal (EtcdPayload.metadata (bytes "node-1")) "\"node-1\"" ""
                Expect.equal (EtcdPayload.metadata [||]) "" ""
            }

            test "payloads that are not etcd's messages are shown as bytes: text, hex, and extra fields" {
                EtcdPayload.normal (bytes "put key200 = value200")
                |> expectPayload "unknown" "\"put key200 = value200\""

                EtcdPayload.normal [| 0xffuy; 0x01uy |] |> expectPayload "unknown" "ff01"
                // A put with a field etcd 3.4 does not define (99) is not taken for a put.
                let extra =
                    Array.append
                        (InternalRaftRequest(Put = PutRequest(Key = bs "k")).ToByteArray())
                        [| 0x98uy; 0x06uy; 0x01uy |]

                Expect.equal (EtcdPayload.normal extra).Kind "unknown" ""
                EtcdPayload.normal [||] |> expectPayload "empty" "empty"
            }

            testPropertyWithConfig
                (fsCheck 500 [ typeof<RandomBytes> ])
                "no bytes make the decoder fail"
                (fun (data: byte[]) ->
                    let n = EtcdPayload.normal data
                    let c1 = EtcdPayload.confChange EntryType.ConfChange data
                    let c2 = EtcdPayload.confChange EntryType.ConfChangeV2 data
                    EtcdPayload.metadata data |> ignore
                    Expect.isTrue (List.contains n.Kind ("normal" :: EtcdPayload.requestKinds)) n.Kind
                    Expect.equal (c1.Kind, c2.Kind) ("conf", "conf") "")
        ]
