/// One story on damage across the tools: verify keeps etcd's verdict on a torn tail but says so,
/// dump after an error shows what it read before it (never a summary that reads like an empty
/// log), permission errors are exit 2 with the OS's reason; and the smaller command-line
/// additions: check-dir --snapshot, check-trace with several files and `-`, --version.
module Wal.Properties.CliDamageTests

open System
open System.IO
open Expecto
open Wal.Properties.Support
open Wal.Properties.CliRunner

let private etcdCase (case: string) = corpus [ "etcd-3.4"; case; "wal" ]

let private trace (name: string) = repoFile [ "examples"; "traces"; name ]

/// Runs the tool in a child process that cannot bypass file permissions: as root (the tests'
/// usual user here), with CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH dropped by setpriv.
let private walWithoutOverride (args: string list) =
    let prefix =
        if Environment.UserName = "root" then
            [ "setpriv"; "--bounding-set=-dac_override,-dac_read_search" ]
        else
            []

    walProcess prefix args

let tests =
    testList
        "CliDamageTests"
        [
            test "verify keeps etcd's ok on a torn tail and says the last record is torn" {
                let code, out, _ = wal [ "verify"; etcdCase "torn-tail" ]
                Expect.equal code 0 ""
                Expect.stringContains out "ok for etcd's Verify; the last record is torn" ""
                Expect.stringContains out "`wal repair` would cut it" ""
                let _, out, _ = wal [ "verify"; etcdCase "saves" ]
                Expect.isFalse (out.Contains "torn") out
            }

            test "dump on a torn tail: the records, where they stop, ReadAll's contents, and why it exits 1" {
                let code, out, _ = wal [ "dump"; etcdCase "torn-tail" ]
                Expect.equal code 1 ""
                Expect.stringContains out "stops: UnexpectedEof" ""
                Expect.stringContains out "ReadAll at snapshot 0/0: term=1 vote=1 commit=9, 9 entries (1..9)" ""
                Expect.stringContains out "the last record is torn: `wal repair` would cut it" ""
            }

            test "dump after a CRC mismatch names the error and what was read, never an empty-looking summary" {
                let code, out, _ = wal [ "dump"; etcdCase "flipped-data" ]
                Expect.equal code 1 ""

                Expect.stringContains
                    out
                    "read before the error: 21 records, last entry 9 (term 1), last hard state term=1 vote=1 commit=9, metadata \"node-1\""
                    ""

                Expect.isFalse (out.Contains "term=0 vote=0 commit=0") out
            }

            test "a directory without read permission: exit 2 with the OS's reason, for every command" {
                use tmp = new TempDir()
                copyTree (etcdCase "saves") tmp.Path
                File.SetUnixFileMode(tmp.Path, UnixFileMode.None)

                try
                    for command in [ "dump"; "verify"; "repair"; "check-dir" ] do
                        let code, _, err = walWithoutOverride [ command; tmp.Path ]
                        Expect.equal code 2 $"{command}: {err}"
                        Expect.stringContains err "Permission denied" command
                        Expect.equal (err.Trim().Split('\n').Length) 1 err
                finally
                    File.SetUnixFileMode(
                        tmp.Path,
                        UnixFileMode.UserRead ||| UnixFileMode.UserWrite ||| UnixFileMode.UserExecute
                    )
            }

            test "a member directory whose wal/ cannot be read: exit 2 with the OS's reason" {
                use tmp = new TempDir()
                copyTree (corpus [ "etcd-3.4-server"; "member" ]) tmp.Path
                let walDir = Path.Combine(tmp.Path, "wal")
                File.SetUnixFileMode(walDir, UnixFileMode.None)

                try
                    let code, _, err = walWithoutOverride [ "dump"; tmp.Path ]
                    Expect.equal code 2 err
                    Expect.stringContains err "Permission denied" ""
                finally
                    File.SetUnixFileMode(
                        walDir,
                        UnixFileMode.UserRead ||| UnixFileMode.UserWrite ||| UnixFileMode.UserExecute
                    )
            }

            test "a segment without read permission: exit 2 with the OS's reason" {
                use tmp = new TempDir()
                copyTree (etcdCase "saves") tmp.Path
                let segment = Directory.GetFiles(tmp.Path, "*.wal") |> Array.sort |> Array.last
                File.SetUnixFileMode(segment, UnixFileMode.None)

                for command in [ "dump"; "verify" ] do
                    let code, _, err = walWithoutOverride [ command; tmp.Path ]
                    Expect.equal code 2 $"{command}: {err}"
                    Expect.stringContains err "Permission denied" command
            }

            test "check-dir --snapshot checks from the snapshot's segment and wants its record" {
                let dir = etcdCase "cuts-snapshots-overwrites"
                let code, out, _ = wal [ "check-dir"; dir; "--snapshot"; "20:1" ]
                Expect.equal code 0 out

                Expect.stringContains
                    out
                    "the earlier segment file 0000000000000000-0000000000000000.wal is not checked"
                    ""

                let code, out, _ = wal [ "check-dir"; dir; "--snapshot"; "21/1" ]
                Expect.equal code 1 out
                Expect.stringContains out "snapshot 21/1: SnapshotNotFound" ""
                let code, out, _ = wal [ "check-dir"; dir; "--snapshot"; "20:2" ]
                Expect.equal code 1 out
                Expect.stringContains out "SnapshotMismatch" ""
                let code, _, err = wal [ "check-dir"; dir; "--snapshot"; "20" ]
                Expect.equal code 2 ""
                Expect.equal (err.Trim().Split('\n').Length) 1 err
            }

            test "check-trace takes several files and - for stdin; the worst verdict is the exit code" {
                let code, out, _ =
                    wal [ "check-trace"; trace "allowed.trace"; trace "reread-state.trace" ]

                Expect.equal code 0 out
                Expect.stringContains out "allowed.trace: ok: all 3 observations" ""
                Expect.stringContains out "reread-state.trace: ok: all 2 observations" ""

                let code, out, _ =
                    wal [ "check-trace"; trace "allowed.trace"; trace "lost-save.trace" ]

                Expect.equal code 1 out
                Expect.stringContains out "lost-save.trace: line 7: the model does not allow" ""

                let code, _, err =
                    wal
                        [
                            "check-trace"
                            trace "allowed.trace"
                            "no-such.trace"
                            trace "lost-save.trace"
                        ]

                Expect.equal code 2 err
                Expect.stringContains err "no-such.trace: no such file" ""

                let code, out, _ =
                    walWithInput (File.ReadAllText(trace "allowed.trace")) [ "check-trace"; "-" ]

                Expect.equal (code, out.Trim()) (0, "ok: all 3 observations are allowed by the model") ""

                let code, _, _ = walWithInput "" [ "check-trace"; "-"; "-" ]
                Expect.equal code 2 ""
            }

            test "--version prints the tool's version" {
                let code, out, _ = wal [ "--version" ]
                Expect.equal code 0 ""
                Expect.stringStarts out "wal 0." out
            }
        ]
