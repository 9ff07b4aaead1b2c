/// Wal.Snap against etcd 3.4's own snap package (through `etcd-peer snap-save`, `snap-load`
/// and `snap-read`): each reads the files the other writes, both write the same bytes for the
/// same snapshot, and both pick the same snapshot and rename the same broken files. Needs the
/// peer (`dotnet fsi build.fsx peer`).
module Wal.Properties.SnapInteropTests

open System
open System.IO
open System.Text.Json
open Expecto
open FsCheck
open FsCheck.FSharp
open Wal
open Wal.Snap
open Wal.Properties.Support

/// A snapshot as the peer's JSON writes it (interop/etcd/peer/snap.go).
let private specOf (s: RaftSnapshot) =
    let cs = s.ConfState |> Option.ofObj |> Option.defaultWith (fun () -> ConfState())

    JsonSerializer.Serialize
        {|
            index = s.Index
            term = s.Term
            voters = cs.Voters
            learners = cs.Learners
            votersOutgoing = cs.VotersOutgoing
            learnersNext = cs.LearnersNext
            autoLeave = cs.AutoLeave
            data = s.Data.ToArray()
        |}

/// The peer's answer: the snapshot, or the error kind it named.
let private parseAnswer (line: string) =
    use doc = JsonDocument.Parse line
    let r = doc.RootElement

    match r.GetProperty "error" with
    | e when e.ValueKind = JsonValueKind.String -> Error(e.GetString())
    | _ ->
        let ids (name: string) =
            match r.GetProperty name with
            | a when a.ValueKind = JsonValueKind.Array -> [ for v in a.EnumerateArray() -> v.GetUInt64() ]
            | _ -> []

        let data =
            match r.GetProperty "data" with
            | d when d.ValueKind = JsonValueKind.String -> d.GetBytesFromBase64()
            | _ -> [||]

        let cs =
            ConfState(
                ids "voters",
                ids "learners",
                ids "votersOutgoing",
                ids "learnersNext",
                r.GetProperty("autoLeave").GetBoolean()
            )

        Ok(RaftSnapshot(r.GetProperty("index").GetUInt64(), r.GetProperty("term").GetUInt64(), ReadOnlyMemory data, cs))

/// etcd's SaveSnap, in a directory made first (as etcd's server makes member/snap).
let private etcdSave (dir: string) (s: RaftSnapshot) =
    Directory.CreateDirectory dir |> ignore
    EtcdPeer.run [ "snap-save"; dir; specOf s ] |> ignore

let private etcdLoad (args: string list) =
    EtcdPeer.run ("snap-load" :: args) |> List.exactlyOne |> parseAnswer

let private etcdRead (path: string) =
    EtcdPeer.run [ "snap-read"; path ] |> List.exactlyOne |> parseAnswer

let private ours (s: RaftSnapshot) = Ok s

let private listing (dir: string) =
    Directory.GetFiles dir
    |> Array.map Path.GetFileName
    |> Array.sort
    |> List.ofArray

/// Snapshots with any index and term, memberships of every shape, and data from nothing to a few KiB.
let private snapshots =
    gen {
        let! index = Gen.choose64 (1L, Int64.MaxValue) |> Gen.map uint64
        let! term = Gen.elements [ 0UL; 1UL; 2UL; 300UL; UInt64.MaxValue ]

        let ids =
            Gen.listOf (Gen.elements [ 1UL; 2UL; 0x2e1259d415f2a040UL; UInt64.MaxValue ])

        let! voters = ids
        let! learners = ids
        let! outgoing = ids
        let! next = ids
        let! autoLeave = Gen.elements [ true; false ]
        let! data = Gen.arrayOf (Gen.choose (0, 255) |> Gen.map byte)
        let! repeat = Gen.choose (1, 40)
        let data = Array.concat (List.replicate repeat data)
        return RaftSnapshot(index, term, ReadOnlyMemory data, ConfState(voters, learners, outgoing, next, autoLeave))
    }

type Snapshots =
    static member Snapshots() = Arb.fromGen snapshots

let ``etcd and Wal.Snap write the same bytes and read each other's files`` (s: RaftSnapshot) =
    use etcdDir = new TempDir()
    use ourDir = new TempDir()
    etcdSave etcdDir.Path s
    let path = Snapshotter(ourDir.Path).Save s
    let etcdFile = Path.Combine(etcdDir.Path, s.FileName)
    Expect.equal (File.ReadAllBytes path) (File.ReadAllBytes etcdFile) "the same bytes"
    Expect.equal (Snapshotter.Read etcdFile) s "Wal.Snap reads etcd's file"
    Expect.equal (etcdRead path) (ours s) "etcd reads Wal.Snap's file"

/// Three snapshots by etcd, then damage to some: etcd's Load and Wal.Snap's LoadNewest pick the
/// same one and leave the same files behind.
let private sameSearchAfterDamage (damage: string -> unit) =
    use etcdDir = new TempDir()
    use ourDir = new TempDir()

    for i in 1UL .. 3UL do
        etcdSave etcdDir.Path (RaftSnapshot(i * 100UL, i, ReadOnlyMemory(bytes $"state {i}"), ConfState([ 1UL ])))

    damage etcdDir.Path
    Directory.CreateDirectory ourDir.Path |> ignore

    for f in Directory.GetFiles etcdDir.Path do
        File.Copy(f, Path.Combine(ourDir.Path, Path.GetFileName f))

    let etcd = etcdLoad [ etcdDir.Path ]
    let search = Snapshotter(ourDir.Path).LoadNewest()

    let engine =
        match search.Snapshot with
        | null -> Error "NoSnapshot"
        | s -> Ok s

    Expect.equal engine etcd "the same snapshot"
    Expect.equal (listing ourDir.Path) (listing etcdDir.Path) "the same files, broken ones renamed alike"

let private name (term: uint64) (index: uint64) = SnapName.Format(term, index)

let private alter (dir: string) (file: string) (change: byte[] -> byte[]) =
    let path = Path.Combine(dir, file)
    File.WriteAllBytes(path, change (File.ReadAllBytes path))

let tests =
    testList
        "SnapInteropTests"
        [
            testPropertyWithConfig
                (fsCheck 30 [ typeof<Snapshots> ])
                "etcd and Wal.Snap write the same bytes and read each other's files"
                ``etcd and Wal.Snap write the same bytes and read each other's files``

            test "a snapshot with no data and no membership: the same bytes both ways" {
                ``etcd and Wal.Snap write the same bytes and read each other's files`` (
                    RaftSnapshot(7UL, 1UL, ReadOnlyMemory.Empty)
                )
            }

            test "no damage: both take the newest" { sameSearchAfterDamage ignore }

            test "a flipped data byte in the newest: both skip it and rename it *.broken" {
                sameSearchAfterDamage (fun dir ->
                    alter dir (name 3UL 300UL) (fun b ->
                        b[b.Length - 8] <- b[b.Length - 8] ^^^ 1uy
                        b))
            }

            test "an empty newest and a truncated second: both fall back to the oldest" {
                sameSearchAfterDamage (fun dir ->
                    alter dir (name 3UL 300UL) (fun _ -> [||])
                    alter dir (name 2UL 200UL) (fun b -> b[.. b.Length - 5]))
            }

            test "every file broken, and a foreign file: both find none" {
                sameSearchAfterDamage (fun dir ->
                    for i in 1UL .. 3UL do
                        alter dir (name i (i * 100UL)) (fun b -> Array.append [| 0xffuy |] b)

                    File.WriteAllText(Path.Combine(dir, "db"), "bolt"))
            }

            test "LoadNewestAvailable over a WAL etcd wrote: the same snapshot as etcd's" {
                use root = new TempDir()
                let walDir = Path.Combine(root.Root, "member", "wal")
                let snapDir = Path.Combine(root.Root, "member", "snap")
                Directory.CreateDirectory(Path.GetDirectoryName walDir) |> ignore
                let script = Path.Combine(root.Root, "script.json")

                let entries =
                    String.Join(",", [ for i in 1..30 -> $"{{\"term\":1,\"index\":{i},\"type\":0,\"data\":\"\"}}" ])

                File.WriteAllText(
                    script,
                    "{\"segmentSize\":4096,\"ops\":[{\"op\":\"create\",\"metadata\":\"\"},"
                    + $"{{\"op\":\"save\",\"term\":1,\"vote\":1,\"commit\":25,\"entries\":[{entries}]}},"
                    + "{\"op\":\"snapshot\",\"index\":10,\"term\":1},{\"op\":\"snapshot\",\"index\":20,\"term\":1},"
                    + "{\"op\":\"snapshot\",\"index\":30,\"term\":1}]}"
                )

                EtcdPeer.run [ "write"; walDir; script ] |> ignore

                for i in [ 10UL; 20UL; 30UL; 40UL ] do
                    etcdSave snapDir (RaftSnapshot(i, 1UL, ReadOnlyMemory(bytes $"at {i}")))

                let etcd = etcdLoad [ snapDir; walDir ]
                let search = Snapshotter(snapDir).LoadNewestAvailable walDir
                Expect.equal (Ok search.Snapshot) etcd ""
                Expect.equal search.Snapshot.Index 20UL "30 is past the commit, 40 has no record"
            }
        ]
