/// The `wal` tool's dump, verify and repair, run through its entry point: exit codes a script
/// can test, one-line errors, and a dump that never changes the directory.
module Wal.Properties.CliTests

open System
open System.IO
open System.Security.Cryptography
open Expecto
open Wal.Cli
open Wal.Oracle
open Wal.Properties.Support

let private corpus (case: string) =
    Path.Combine(testDirectory, "corpus", case)

let private etcdCase (case: string) =
    Path.Combine(corpus "etcd-3.4", case, "wal")

/// Runs `wal args`; the exit code, stdout and stderr.
let private wal (args: string list) =
    let out, err = new StringWriter(), new StringWriter()
    let oldOut, oldErr = Console.Out, Console.Error
    Console.SetOut out
    Console.SetError err

    let code =
        try
            Program.main (Array.ofList args)
        finally
            Console.SetOut oldOut
            Console.SetError oldErr

    code, out.ToString(), err.ToString()

let private copyOf (source: string) (tmp: TempDir) =
    Directory.CreateDirectory tmp.Path |> ignore

    for f in Directory.GetFiles source do
        File.Copy(f, Path.Combine(tmp.Path, Path.GetFileName f))

    tmp.Path

let private fingerprint (dir: string) =
    [
        for f in Directory.GetFiles dir |> Array.sort ->
            Path.GetFileName f, Convert.ToHexString(SHA256.HashData(File.ReadAllBytes f))
    ]

let private oneLine (err: string) =
    let lines = err.Trim().Split('\n')
    Expect.equal lines.Length 1 err
    Expect.stringStarts lines[0] "wal: " err

let ``dump shows every record and ReadAll's summary of an etcd data directory`` () =
    // etcd's peer wrote this log committing past its last entry, which raft never does: by
    // default the tool says so, and --lenient reads it as etcd does.
    let code, out, err = wal [ "dump"; etcdCase "saves" ]
    Expect.equal code 1 out
    Expect.stringContains err "ReadAll: CorruptRecord" ""
    oneLine err
    let code, out, _ = wal [ "dump"; "--lenient"; etcdCase "saves" ]
    Expect.equal code 0 ""
    Expect.stringContains out "433 records" ""
    Expect.stringContains out "0000000000000003-00000000000000a3.wal" ""
    Expect.stringContains out "norm \"put key200 = value200\"" ""

    Expect.stringContains
        out
        "ReadAll at snapshot 0/0: term=1 vote=1 commit=201, 200 entries (1..200), metadata \"node-1\""
        ""

let ``dump --json prints ReadAll in the schema etcd's peer prints`` () =
    let code, out, _ =
        wal [ "dump"; etcdCase "saves"; "--lenient"; "--snapshot"; "90:1"; "--json" ]

    Expect.equal code 0 ""

    match ReadAllJson.parse (out.Trim()) with
    | Ok dump ->
        Expect.equal (dump.SnapIndex, dump.SnapTerm, dump.Commit, dump.Error) (90UL, 1UL, 201UL, None) ""
        Expect.equal (dump.Entries |> List.map (fun e -> e.Index)) [ 91UL .. 200UL ] ""
        Expect.equal (Text.Encoding.ASCII.GetString dump.Metadata) "node-1" ""
    | Error e -> failtest e

let ``dump reports damage with exit code 1 and the error kind`` () =
    let code, out, _ = wal [ "dump"; etcdCase "flipped-data"; "--json" ]
    Expect.equal code 1 ""
    Expect.stringContains out "\"error\":\"CrcMismatch\"" ""
    let code, out, err = wal [ "dump"; etcdCase "flipped-data" ]
    Expect.equal code 1 ""
    Expect.stringContains out "stops: CrcMismatch" ""
    oneLine err

let ``dump never changes the directory, even a torn one`` () =
    use tmp = new TempDir()
    let dir = copyOf (etcdCase "torn-tail") tmp
    let before = fingerprint dir

    for args in [ [ "dump"; dir ]; [ "dump"; dir; "--json" ]; [ "verify"; dir ] ] do
        wal args |> ignore
        Expect.equal (fingerprint dir) before (String.Join(" ", args))

let ``verify: 0 when the WAL checks out, 1 naming the problem when not`` () =
    let code, _, err = wal [ "verify"; etcdCase "saves"; "--snapshot"; "90/1" ]
    Expect.equal code 1 ""
    Expect.stringContains err "CorruptRecord" ""

    let code, out, _ =
        wal [ "verify"; "--lenient"; etcdCase "saves"; "--snapshot"; "90:1" ]

    Expect.equal code 0 ""
    Expect.stringContains out "last hard state term=1 vote=1 commit=201" ""

    let code, _, err =
        wal [ "verify"; "--lenient"; etcdCase "saves"; "--snapshot"; "90:2" ]

    Expect.equal code 1 ""
    Expect.stringContains err "SnapshotMismatch" ""
    oneLine err

    let code, _, err = wal [ "verify"; etcdCase "huge-length" ]
    Expect.equal code 1 ""
    Expect.stringContains err "RecordTooLarge" ""
    oneLine err

let ``repair cuts a torn tail off once, keeps a .broken copy, and refuses corruption`` () =
    use tmp = new TempDir()
    let dir = copyOf (etcdCase "torn-tail") tmp
    let code, out, _ = wal [ "repair"; dir ]
    Expect.equal code 0 ""
    Expect.stringStarts out "repaired" ""
    Expect.hasLength (Directory.GetFiles(dir, "*.broken")) 1 ""
    let code, out, _ = wal [ "repair"; dir ]
    Expect.equal (code, out.Trim()) (0, "nothing to repair: the last segment ends cleanly") ""

    use tmp2 = new TempDir()
    let corrupt = copyOf (etcdCase "flipped-data") tmp2
    let before = fingerprint corrupt
    let code, _, err = wal [ "repair"; corrupt ]
    Expect.equal code 1 ""
    Expect.stringContains err "CrcMismatch" ""
    oneLine err
    Expect.equal (fingerprint corrupt) before ""

let ``bad input gets a one-line error and a non-zero exit, never a stack trace`` () =
    use tmp = new TempDir()
    Directory.CreateDirectory tmp.Path |> ignore
    let file = Path.Combine(tmp.Root, "a-file")
    File.WriteAllText(file, "not a WAL")
    let foreign = Path.Combine(tmp.Root, "foreign")
    Directory.CreateDirectory foreign |> ignore
    File.WriteAllText(Path.Combine(foreign, "notes.txt"), "hello")
    let junk = Path.Combine(tmp.Root, "junk")
    Directory.CreateDirectory junk |> ignore
    File.WriteAllBytes(Path.Combine(junk, "0000000000000000-0000000000000000.wal"), Array.init 5000 byte)
    let unreadable = Path.Combine(tmp.Root, "unreadable")

    Directory.CreateDirectory(Path.Combine(unreadable, "0000000000000000-0000000000000000.wal"))
    |> ignore

    let cases =
        [
            [ "dump"; Path.Combine(tmp.Root, "missing") ], 2
            [ "dump"; file ], 2
            [ "verify"; file ], 2
            [ "repair"; Path.Combine(tmp.Root, "missing") ], 2
            [ "dump"; foreign ], 1
            [ "verify"; foreign ], 1
            [ "repair"; foreign ], 1
            [ "dump"; junk ], 1
            [ "dump"; junk; "--json" ], 1
            [ "verify"; junk ], 1
            [ "repair"; junk ], 1
            [ "dump"; unreadable ], 1
            [ "verify"; unreadable ], 1
            [ "repair"; unreadable ], 1
            [ "dump"; tmp.Path; "--snapshot"; "12" ], 2
            [ "verify"; tmp.Path; "--snapshot"; "x:1" ], 2
            [ "dump" ], 2
            [ "frobnicate" ], 2
        ]

    for args, expected in cases do
        let code, _, err = wal args
        let shown = String.Join(" ", args)
        Expect.equal code expected $"{shown}: {err}"
        Expect.isFalse (err.Contains("   at ")) shown
        Expect.isNonEmpty (err.Trim()) shown

let ``check-trace: the example traces get their verdicts, junk gets exit code 2`` () =
    let code, out, _ =
        wal [ "check-trace"; repoFile [ "examples"; "traces"; "allowed.trace" ] ]

    Expect.equal (code, out.Trim()) (0, "ok: all 3 observations are allowed by the model") ""

    let code, out, _ =
        wal [ "check-trace"; repoFile [ "examples"; "traces"; "lost-save.trace" ] ]

    Expect.equal code 1 ""
    Expect.stringStarts out "line 7: the model does not allow" ""

    use tmp = new TempDir()
    Directory.CreateDirectory tmp.Path |> ignore
    let junk = Path.Combine(tmp.Path, "junk.trace")
    File.WriteAllBytes(junk, Array.init 4096 (fun i -> byte (i * 7919 % 256)))
    let code, _, err = wal [ "check-trace"; junk ]
    Expect.equal code 2 ""
    oneLine err
    Expect.stringContains err ":1:1:" ""

let ``check-trace judges by raft's contract, and by etcd's exact rule on request`` () =
    let trace = repoFile [ "examples"; "traces"; "reread-state.trace" ]
    let code, out, _ = wal [ "check-trace"; trace ]
    Expect.equal (code, out.Trim()) (0, "ok: all 2 observations are allowed by the model") ""
    let code, out, _ = wal [ "check-trace"; "--etcd-exact"; trace ]
    Expect.equal code 1 out
    Expect.stringStarts out "line 11: the model does not allow" ""
    // A Save that changes the term after the open must be durable under both rules.
    let lost = repoFile [ "examples"; "traces"; "lost-save.trace" ]
    Expect.equal (wal [ "check-trace"; lost ] |> fun (c, _, _) -> c) 1 ""
    Expect.equal (wal [ "check-trace"; "--etcd-exact"; lost ] |> fun (c, _, _) -> c) 1 ""

let ``replay runs a trace against the engine and judges the engine's run`` () =
    let code, out, _ =
        wal [ "replay"; repoFile [ "examples"; "traces"; "lost-save.trace" ] ]
    // The engine keeps the save the trace's implementation lost, and the model allows that.
    Expect.equal code 0 out

    Expect.stringContains
        out
        "the engine returned\n  read \"node-1\" 2/1/0 [1/1 \"put a\", 1/2 \"put b\", 2/3 \"put c\"]"
        ""

    Expect.stringContains out "model: ok" ""

let ``replay runs the engine with zero-filled segments where the trace says so`` () =
    use tmp = new TempDir()
    Directory.CreateDirectory tmp.Root |> ignore
    let file = Path.Combine(tmp.Root, "zero-filled.trace")
    // As the explorer prints a counterexample it found with WalOptions.ZeroFillSegments.
    File.WriteAllText(
        file,
        "# segment size 4096\ncreate \"node-1\"\nsnapshot 13/6\nclose\nopen 13/6\n# plain: power cut after mutating call 0, zero-filled segments\n"
    )

    let code, out, _ = wal [ "replay"; file ]
    Expect.equal code 0 out
    Expect.stringContains out "(4096-byte segments, zero-filled)" "the comment turns the option on"
    Expect.stringContains out "model: ok" "and the engine's run is one the model allows"

    let plain = repoFile [ "examples"; "traces"; "lost-save.trace" ]

    let code, out, _ = wal [ "replay"; "--zero-fill-segments"; plain ]
    Expect.equal code 0 out
    Expect.stringContains out "-byte segments, zero-filled)" "the flag turns it on"
    let _, out, _ = wal [ "replay"; plain ]
    Expect.isFalse (out.Contains "zero-filled") "off otherwise"

let ``the documented trace is one the model allows`` () =
    let doc = File.ReadAllText(repoFile [ "docs"; "traces.md" ])
    let start = doc.IndexOf("```text\n") + 8
    let example = doc.Substring(start, doc.IndexOf("```", start) - start)

    match Wal.Oracle.Trace.parse example with
    | Ok lines -> Expect.equal (Wal.Oracle.Trace.check lines) (Wal.Oracle.Trace.Allowed 3) ""
    | Error e -> failtest (string e)

let ``check-dir: 0 on a sound etcd WAL, 1 naming what is broken, 2 on a non-directory`` () =
    let code, out, _ = wal [ "check-dir"; etcdCase "cuts-snapshots-overwrites" ]
    Expect.equal (code, out.Trim()) (0, "3 segment files; 0 broken invariants, 0 warnings") ""
    let code, out, _ = wal [ "check-dir"; etcdCase "flipped-data" ]
    Expect.equal code 1 ""
    Expect.stringContains out "at 1000: the CRC chain breaks" ""
    // The saves corpus commits one past its last entry after every tenth Save, which raft never does.
    let code, out, _ = wal [ "check-dir"; etcdCase "saves" ]
    Expect.equal code 1 ""
    Expect.stringContains out "a hard state commits 11, beyond the last entry 10" ""
    let code, _, err = wal [ "check-dir"; repoFile [ "README.md" ] ]
    Expect.equal code 2 ""
    oneLine err

/// The tool skips Argu's structure check at start (it costs a large part of the start): the check
/// is made here instead.
let ``the command tree passes Argu's structure check`` () = Program.checkCommandTree ()

/// This file's tests.
let tests =
    testList
        "CliTests"
        [
            testCase
                "dump shows every record and ReadAll's summary of an etcd data directory"
                ``dump shows every record and ReadAll's summary of an etcd data directory``
            testCase
                "dump --json prints ReadAll in the schema etcd's peer prints"
                ``dump --json prints ReadAll in the schema etcd's peer prints``
            testCase
                "dump reports damage with exit code 1 and the error kind"
                ``dump reports damage with exit code 1 and the error kind``
            testCase
                "dump never changes the directory, even a torn one"
                ``dump never changes the directory, even a torn one``
            testCase
                "verify: 0 when the WAL checks out, 1 naming the problem when not"
                ``verify: 0 when the WAL checks out, 1 naming the problem when not``
            testCase
                "repair cuts a torn tail off once, keeps a .broken copy, and refuses corruption"
                ``repair cuts a torn tail off once, keeps a .broken copy, and refuses corruption``
            testCase
                "bad input gets a one-line error and a non-zero exit, never a stack trace"
                ``bad input gets a one-line error and a non-zero exit, never a stack trace``
            testCase
                "check-trace: the example traces get their verdicts, junk gets exit code 2"
                ``check-trace: the example traces get their verdicts, junk gets exit code 2``
            testCase
                "check-trace judges by raft's contract, and by etcd's exact rule on request"
                ``check-trace judges by raft's contract, and by etcd's exact rule on request``
            testCase
                "replay runs a trace against the engine and judges the engine's run"
                ``replay runs a trace against the engine and judges the engine's run``
            testCase
                "replay runs the engine with zero-filled segments where the trace says so"
                ``replay runs the engine with zero-filled segments where the trace says so``
            testCase "the command tree passes Argu's structure check" ``the command tree passes Argu's structure check``
            testCase "the documented trace is one the model allows" ``the documented trace is one the model allows``
            testCase
                "check-dir: 0 on a sound etcd WAL, 1 naming what is broken, 2 on a non-directory"
                ``check-dir: 0 on a sound etcd WAL, 1 naming what is broken, 2 on a non-directory``
        ]
