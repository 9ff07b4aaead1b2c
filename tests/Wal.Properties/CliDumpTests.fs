/// `wal dump` on a real etcd 3.4.23 server's member directory (corpus/etcd-3.4-server): it starts
/// from the newest valid snapshot in snap/, decodes what etcd's server stored (puts, leases,
/// deletes, txns, compactions, auth, v2 requests, conf changes) with ids in hex, and filters
/// entries by index and kind.
module Wal.Properties.CliDumpTests

open System
open System.IO
open Expecto
open Wal.Oracle
open Wal.Properties.Support
open Wal.Properties.CliRunner

let private memberDir = corpus [ "etcd-3.4-server"; "member" ]

let private lines (out: string) =
    out.Split('\n', StringSplitOptions.RemoveEmptyEntries) |> List.ofArray

let tests =
    testList
        "CliDumpTests"
        [
            test "a member directory: from the newest snapshot, every payload decoded, ids in hex" {
                let code, out, err = wal [ "dump"; memberDir ]
                Expect.equal code 0 err

                for expected in
                    [
                        "snapshot 42/2 from snap/0000000000000002-000000000000002a.snap"
                        "members voters=[2e1259d415f2a040] learners=[f3eb096f357b7ff6]"
                        "metadata                           20  node=2e1259d415f2a040 cluster=48276a8f75b6a87"
                        "conf add-node 2e1259d415f2a040 context=\"{\"id\":3319814642761637952"
                        "norm empty"
                        "norm v2 PUT \"/0/version\" val=\"3.4.0\""
                        "vote=2e1259d415f2a040 commit=3"
                        "norm put key=\"key1\" value=\"value1\""
                        "norm lease-grant id=2040a21573b0b823 ttl=600s"
                        "norm delete-range key=\"key2\""
                        "norm txn if [value(\"key3\") = \"value3\"] then [put key=\"key3\" value=\"changed\"] else [range key=\"key3\"]"
                        "norm compaction revision=5"
                        "conf add-learner f3eb096f357b7ff6"
                        "norm user-add name=\"alice\""
                        "norm role-add name=\"reader\""
                        "116 records"
                        "ReadAll at snapshot 42/2: term=2 vote=2e1259d415f2a040 commit=56, 14 entries (43..56), metadata node=2e1259d415f2a040 cluster=48276a8f75b6a87"
                    ] do
                    Expect.stringContains out expected expected

                Expect.isFalse (out.Contains "secret") "passwords are not shown"
            }

            test "a data directory (holding member/) reads as its member directory" {
                let code, out, _ = wal [ "dump"; corpus [ "etcd-3.4-server" ] ]
                Expect.equal code 0 ""
                Expect.stringContains out "ReadAll at snapshot 42/2:" ""
            }

            test "--snapshot overrides the snapshot files; the WAL directory alone starts at 0:0" {
                let _, out, _ = wal [ "dump"; memberDir; "--snapshot"; "21/2" ]
                Expect.stringContains out "snapshot 21/2 (--snapshot)" ""

                Expect.stringContains
                    out
                    "ReadAll at snapshot 21/2: term=2 vote=2e1259d415f2a040 commit=56, 35 entries (22..56)"
                    ""

                let _, out, _ = wal [ "dump"; Path.Combine(memberDir, "wal") ]

                Expect.stringContains
                    out
                    "ReadAll at snapshot 0/0: term=2 vote=2e1259d415f2a040 commit=56, 56 entries (1..56)"
                    ""
            }

            test "--start-index, --end-index and --type show only the entries asked for" {
                let _, out, _ =
                    wal
                        [
                            "dump"
                            memberDir
                            "--start-index"
                            "35"
                            "--end-index"
                            "40"
                            "--type"
                            "txn,conf"
                            "--type"
                            "auth"
                        ]

                let shown = lines out |> List.filter (fun l -> l.Contains " entry ")
                Expect.equal shown.Length 3 out
                Expect.stringContains shown[0] "norm txn" ""
                Expect.stringContains shown[1] "conf add-learner" ""
                Expect.stringContains shown[2] "norm user-add" ""
                Expect.stringContains out "116 records, 3 entries shown" ""
                Expect.isFalse (out.Contains " state ") "only entries when filtering"

                let _, out, _ = wal [ "dump"; memberDir; "--type"; "normal"; "--end-index"; "4" ]
                Expect.equal (lines out |> List.filter (fun l -> l.Contains " entry ") |> List.length) 3 out
            }

            test "--raw shows the payloads undecoded" {
                let _, out, _ =
                    wal [ "dump"; memberDir; "--raw"; "--start-index"; "5"; "--end-index"; "5" ]

                Expect.stringContains out "norm 220e0a046b657931" "an InternalRaftRequest's bytes, in hex"
                Expect.isFalse (out.Contains "put key=") ""
            }

            test "an unknown --type and --json with filters are usage errors (exit 2)" {
                let code, _, err = wal [ "dump"; memberDir; "--type"; "puts" ]
                Expect.equal code 2 err
                Expect.stringContains err "--type takes" ""
                let code, _, _ = wal [ "dump"; memberDir; "--json"; "--start-index"; "3" ]
                Expect.equal code 2 ""
            }

            test "--json on a member directory is ReadAll at the newest snapshot" {
                let code, out, _ = wal [ "dump"; memberDir; "--json" ]
                Expect.equal code 0 ""

                match ReadAllJson.parse (out.Trim()) with
                | Ok dump ->
                    Expect.equal (dump.SnapIndex, dump.SnapTerm, dump.Commit) (42UL, 2UL, 56UL) ""
                    Expect.equal (dump.Entries |> List.map (fun e -> e.Index)) [ 43UL .. 56UL ] ""
                | Error e -> failtest e
            }

            test "a broken newest snapshot is passed over, named, and left as it is" {
                use tmp = new TempDir()
                copyTree memberDir tmp.Path

                let newest =
                    Path.Combine(tmp.Path, "snap", "0000000000000002-000000000000002a.snap")

                let bytes = File.ReadAllBytes newest
                bytes[100] <- bytes[100] ^^^ 4uy
                File.WriteAllBytes(newest, bytes)
                let before = fingerprint tmp.Path
                let code, out, _ = wal [ "dump"; tmp.Path ]
                Expect.equal code 0 ""
                Expect.stringContains out "skipped snap/0000000000000002-000000000000002a.snap (broken): " ""
                Expect.stringContains out "snapshot 21/2 from snap/0000000000000002-0000000000000015.snap" ""
                Expect.stringContains out "ReadAll at snapshot 21/2:" ""
                Expect.equal (fingerprint tmp.Path) before "dump renames nothing"
            }

            test "no snapshot files: the member directory reads from 0/0" {
                use tmp = new TempDir()
                copyTree memberDir tmp.Path
                Directory.Delete(Path.Combine(tmp.Path, "snap"), true)
                let code, out, _ = wal [ "dump"; tmp.Path ]
                Expect.equal code 0 ""
                Expect.stringContains out "no valid snapshot in snap/ that the WAL holds; from 0/0" ""
                Expect.stringContains out "ReadAll at snapshot 0/0:" ""
            }
        ]
