/// Recorded system calls replayed into the simulated disk: one recording per call kind (made by
/// real strace from tests/Wal.Properties/strace/scenarios.py with make-fixtures.sh), the disk each
/// leaves, junk that must be a parse error, and a live run whose replay must match the real disk.
module Wal.Properties.StraceReplayTests

open System
open System.Diagnostics
open System.IO
open System.Text
open Expecto
open Wal.Simulation
open Wal.Properties.Support

let private fixtures = Path.Combine(AppContext.BaseDirectory, "strace")

/// The fixtures were recorded in /tmp/sf, watching /tmp/sf/w.
let private setup =
    {
        Root = "/tmp/sf/w"
        WorkingDirectory = "/tmp/sf"
    }

let private replayText (text: string) =
    match Replay.ofText setup DiskState.empty text with
    | Ok r -> r
    | Error e -> failwith $"line {e.Line} column {e.Column}: {e.Message}"

let private replay (name: string) =
    replayText (File.ReadAllText(Path.Combine(fixtures, name + ".txt")))

let private bytesOf (c: Content) =
    let bytes = Array.zeroCreate<byte>(int c.Length)
    Content.read c 0L (Span bytes) |> ignore
    bytes

let private show (c: Content) = Encoding.Latin1.GetString(bytesOf c)

/// The files a process sees now, with what it reads in them.
let private current (disk: DiskState) =
    disk.Current
    |> Map.toList
    |> List.choose (fun (path, node) ->
        match node with
        | FileNode id -> Some(path, show disk.Inodes[id].Current)
        | DirNode -> None)

/// The files a process sees now, with their durable bytes.
let private durable (disk: DiskState) =
    disk.Current
    |> Map.toList
    |> List.choose (fun (path, node) ->
        match node with
        | FileNode id -> Some(path, show disk.Inodes[id].Durable)
        | DirNode -> None)

let private directories (disk: DiskState) =
    disk.Current
    |> Map.toList
    |> List.choose (fun (path, node) -> if node = DirNode then Some path else None)

let private calls (r: Replayed) =
    r.Steps |> List.map (fun s -> s.Call) |> List.distinct |> List.sort

let private fixtureTests =
    testList
        "recorded calls"
        [
            test "openat with O_CREAT and O_TRUNC, write, close" {
                let r = replay "openat_write"
                Expect.equal (current r.Final) [ "/a", "hi" ] "files"
                Expect.equal (calls r) [ "openat"; "write" ] "calls"
                // create, write, truncate by the second open, write
                Expect.equal r.Steps.Length 4 "steps"
                Expect.equal r.Final.PendingNamespace [ Link("/a", 1) ] "the name is not durable"
                Expect.equal (durable r.Final) [ "/a", "" ] "nothing is durable"
            }

            test "open and creat" {
                let r = replay "open_creat"
                Expect.equal (current r.Final) [ "/c", "creat"; "/o", "open" ] "files"
                Expect.equal (calls r) [ "creat"; "open"; "write" ] "calls"
            }

            test "pwrite64, writev, pwritev, pwritev2 (RWF_DSYNC durable: its own range)" {
                let r = replay "pwrite_writev"
                Expect.equal (current r.Final) [ "/p", "q1ab45mnP9XYZ" ] "pwrite keeps the position"
                Expect.equal (calls r) [ "openat"; "pwrite64"; "pwritev"; "pwritev2"; "write"; "writev" ] "calls"
                let afterDsync = r.Steps |> List.findBack (fun s -> s.Call = "pwritev2")

                Expect.equal
                    (durable afterDsync.State)
                    [ "/p", "q" ]
                    "RWF_DSYNC makes its own write durable, not the unsynced writes before it"

                let crashed (kept: Inode -> int) =
                    let state = afterDsync.State

                    CrashImage.crash
                        state
                        {
                            NamespaceKept = state.PendingNamespace.Length
                            Files = CrashImage.undecided state |> Map.map (fun _ i -> KeptPrefix(kept i, 0))
                            Lost = OldContents
                        }
                    |> current

                Expect.equal (crashed (fun _ -> 0)) [ "/p", "q" ] "everything unsynced lost: the synced write stays"

                Expect.equal
                    (crashed _.Pending.Length)
                    [ "/p", "q1ab45mn89XYZ" ]
                    "everything kept: the earlier writes do not overwrite the synced one"
            }

            test "lseek and read set the position a write lands at" {
                let r = replay "lseek_read"
                Expect.equal (current r.Final) [ "/s", "abXdeYgh\000\000Z" ] "files"
            }

            test "O_APPEND writes at the end whatever the position" {
                let r = replay "append"
                Expect.equal (current r.Final) [ "/l", "onetwo" ] "files"
            }

            test "dup, dup2, dup3, fcntl(F_DUPFD) and fcntl(F_DUPFD_CLOEXEC) share one position" {
                let r = replay "dups"
                Expect.equal (current r.Final) [ "/d", "abcdefg" ] "each write follows the last"
                Expect.equal r.Unmodelled [] "nothing unmodelled"
            }

            test "ftruncate and truncate" {
                let r = replay "truncates"
                Expect.equal (current r.Final) [ "/t", "abc\000\000" ] "files"
                Expect.equal (calls r) [ "ftruncate"; "openat"; "truncate"; "write" ] "calls"
            }

            test "fallocate: grows, keeps the size, punches a hole" {
                let r = replay "fallocates"
                Expect.equal (current r.Final) [ "/f", "a\000\000def\000\000\000\000" ] "files"
                Expect.equal r.Unmodelled [] "every mode modelled"
            }

            test "fsync, fdatasync, sync_file_range, directory fsync, syncfs" {
                let r = replay "syncs"
                let dirSync = r.Steps |> List.find (fun s -> s.Call = "fsync" && s.Path = "/")

                Expect.equal
                    (durable dirSync.State)
                    [ "/y1", "fsync"; "/y2", "fdatasync"; "/y3", "" ]
                    "fsync and fdatasync make data durable, sync_file_range does not"

                Expect.equal
                    (dirSync.State.Durable |> Map.toList |> List.map fst)
                    [ "/"; "/y1"; "/y2"; "/y3" ]
                    "the directory fsync makes the names durable"

                Expect.equal r.Final.PendingNamespace [] "syncfs commits the namespace"

                Expect.equal
                    (durable r.Final)
                    [ "/y1", "fsync"; "/y2", "fdatasync"; "/y3", "range"; "/y4", "syncfs" ]
                    "syncfs commits every file"

                Expect.equal (calls r) [ "fdatasync"; "fsync"; "openat"; "syncfs"; "write" ] "calls"
            }

            test "O_SYNC and O_DSYNC writes are durable when they return" {
                let r = replay "synchronous"
                Expect.equal (durable r.Final) [ "/q1", "sync"; "/q2", "dsync" ] "durable"
                Expect.equal r.Final.Durable.Count 1 "the names are not"
            }

            test "rename, renameat, renameat2; a directory moves with its files" {
                let r = replay "renames"
                Expect.equal (current r.Final) [ "/moved/x", "x"; "/r3", "r" ] "files"
                Expect.equal (directories r.Final) [ "/"; "/moved" ] "directories"
                Expect.equal (calls r) [ "mkdir"; "openat"; "rename"; "renameat"; "renameat2"; "write" ] "calls"
            }

            test "mkdir, mkdirat, unlink, unlinkat, rmdir, unlinkat(AT_REMOVEDIR)" {
                let r = replay "removes"
                Expect.equal (r.Final.Current |> Map.toList |> List.map fst) [ "/" ] "all gone"
                Expect.equal (calls r) [ "mkdir"; "mkdirat"; "openat"; "rmdir"; "unlink"; "unlinkat" ] "calls"
                Expect.equal r.Final.Durable.Count 1 "no directory fsync: nothing durable"
            }

            test "mmap(MAP_SHARED), msync and writes outside the tree are reported once each" {
                let r = replay "unmodellable"

                Expect.equal
                    r.Unmodelled
                    [ "mmap(MAP_SHARED)"; "msync"; "write outside the watched tree" ]
                    "reported by name"

                Expect.equal (current r.Final) [ "/mm", String('\000', 16) ] "the mapped write is not seen"
            }

            test "io_uring calls are reported" {
                let r =
                    replayText
                        "100 io_uring_setup(8, 0x7ffc) = 3\n100 io_uring_enter(3, 1, 0, 0, NULL, 8) = 1\n100 io_uring_enter(3, 1, 0, 0, NULL, 8) = 1\n"

                Expect.equal r.Unmodelled [ "io_uring_setup"; "io_uring_enter" ] "reported once by name"
            }

            test "writes to stdout are acknowledgements after the calls before them" {
                let r = replay "answers"

                Expect.equal
                    (r.Acknowledgements |> List.map (fun a -> a.Text, a.AfterStep))
                    [ "ok 1", 3; "ok 2", 4 ]
                    "answers"

                Expect.equal r.Unmodelled [] "stdout is not outside the tree"
            }

            test "answers written through a dup of stdout count (as .NET's Console writes them)" {
                let r =
                    replayText (
                        "1 dup(1<pipe:[7]>) = 63<pipe:[7]>\n"
                        + "1 openat(-100</tmp/sf>, \"w/a\", 0x241, 0644) = 3</tmp/sf/w/a>\n"
                        + "1 write(3</tmp/sf/w/a>, \"x\", 1) = 1\n"
                        + "1 write(63<pipe:[7]>, \"ok\\n\", 3) = 3\n"
                    )

                Expect.equal (r.Acknowledgements |> List.map (fun a -> a.Text, a.AfterStep)) [ "ok", 2 ] "answers"
            }

            test "a child seen before its parent's clone returns does not answer for the parent" {
                // pyenv's shim: a subshell writes the cwd into a pipe on its fd 1 before strace
                // prints the clone that made it.
                let r =
                    replayText (
                        "1 clone(child_stack=NULL, flags=0x1200011 <unfinished ...>\n"
                        + "2 dup2(4<pipe:[9]>, 1) = 1<pipe:[9]>\n"
                        + "2 write(1<pipe:[9]>, \"/tmp/sf\\n\", 8) = 8\n"
                        + "1 <... clone resumed>) = 2\n"
                        + "1 write(1<pipe:[7]>, \"ok\\n\", 3) = 3\n"
                    )

                Expect.equal (r.Acknowledgements |> List.map _.Text) [ "ok" ] "only the traced process's answer"
            }

            test "close forgets a descriptor; a failed call changes nothing" {
                let r =
                    replayText (
                        "1 openat(-100</tmp/sf>, \"w/a\", 0x241, 0644) = 3</tmp/sf/w/a>\n"
                        + "1 close(3</tmp/sf/w/a>) = 0\n"
                        + "1 write(3, \"x\", 1) = -1 EBADF (Bad file descriptor)\n"
                        + "1 write(3, \"y\", 1) = 1\n"
                        + "1 unlink(\"w/missing\") = -1 ENOENT (No such file or directory)\n"
                    )

                Expect.equal (current r.Final) [ "/a", "" ] "nothing written after close"
                Expect.equal r.Steps.Length 1 "only the create"
            }

            test "children get a copy of the table, threads share it" {
                let r =
                    replayText (
                        "1 openat(-100</tmp/sf>, \"w/a\", 0x241, 0644) = 3</tmp/sf/w/a>\n"
                        + "1 clone(child_stack=NULL, flags=0x1200011, child_tidptr=0x7f) = 2\n"
                        + "1 clone3({flags=0x3d0f00, exit_signal=0, stack=0x7f}, 88) = 3\n"
                        + "2 write(3, \"child\", 5) = 5\n"
                        + "3 write(3, \"thread\", 6) = 6\n"
                        + "1 write(3, \"parent\", 6) = 6\n"
                        + "3 write(1<pipe:[5]>, \"ack\\n\", 4) = 4\n"
                        + "2 write(1<pipe:[6]>, \"not\\n\", 4) = 4\n"
                    )

                Expect.equal (current r.Final) [ "/a", "childthreadparent" ] "one description, one position"
                Expect.equal r.Acknowledgements.Length 1 "only the traced process's answers"
            }

            test "chdir moves relative paths; links and kernel copies into the tree are reported" {
                let r =
                    replayText (
                        "1 chdir(\"/tmp/sf/w\") = 0\n"
                        + "1 mkdir(\"d\", 0777) = 0\n"
                        + "1 fchdir(4</tmp/sf/w/d>) = 0\n"
                        + "1 mkdir(\"e\", 0777) = 0\n"
                        + "1 openat(-100</tmp/sf/w/d>, \"f\", 0x241, 0644) = 3</tmp/sf/w/d/f>\n"
                        + "1 link(\"f\", \"g\") = 0\n"
                        + "1 symlink(\"f\", \"/tmp/elsewhere\") = 0\n"
                        + "1 copy_file_range(5</tmp/x>, NULL, 3</tmp/sf/w/d/f>, NULL, 10, 0) = 10\n"
                        + "1 sendfile(6<pipe:[1]>, 3</tmp/sf/w/d/f>, NULL, 10) = 10\n"
                    )

                Expect.equal (directories r.Final) [ "/"; "/d"; "/d/e" ] "directories"
                Expect.equal (current r.Final) [ "/d/f", "" ] "files"
                Expect.equal r.Unmodelled [ "link"; "copy_file_range" ] "reported"
            }

            test "what a .NET process's recording holds reads, and is not reported" {
                let r =
                    replayText (
                        "1 clone3({flags=0x3d0f00, stack_size=0x7fff80} => {parent_tid=[2]}, 88) = 2\n"
                        + "1 ftruncate(8</memfd:doublemapper>(deleted), 4096) = 0\n"
                        + "2 read(3</tmp/sf/w/a>,  <unfinished ...>\n"
                        + "2 <... read resumed> <unfinished ...>) = ?\n"
                        + "1 write(4</proc/1/task/2/comm>, \"x\", 1) = 1\n"
                        + "1 write(5<anon_inode:[eventfd]>, \"x\", 1) = 1\n"
                    )

                Expect.equal r.Unmodelled [] "nothing reported"
                Expect.isEmpty r.Steps "nothing changed"
            }

            test "a line split around another call is joined" {
                let r =
                    replayText (
                        "1 openat(-100</tmp/sf>, \"w/a\", 0x241, 0644) = 3</tmp/sf/w/a>\n"
                        + "1 write(3</tmp/sf/w/a>, \"ab\", 2 <unfinished ...>\n"
                        + "2 mkdir(\"w/d\", 0777) = 0\n"
                        + "1 <... write resumed>) = 2\n"
                    )

                Expect.equal (current r.Final) [ "/a", "ab" ] "files"
                Expect.equal (directories r.Final) [ "/"; "/d" ] "directories"
            }
        ]

let private parseErrors =
    let fails (name: string) (text: string) (line: int) =
        test name {
            match Strace.parse text with
            | Ok lines -> failtest $"parsed: %A{lines}"
            | Error e ->
                Expect.equal e.Line line "line"
                Expect.isGreaterThan e.Column 0 "column"
                Expect.isNotEmpty e.Message "message"
        }

    testList
        "junk"
        [
            fails "words" "hello world" 1
            fails "an unclosed call" "100 write(3, \"ab\", 2" 1
            fails "a bad escape" "100 openat(-100</tmp>, \"\\xZZ\", 0) = 3\n" 1
            fails "no result" "100 close(3)\n" 1
            fails "a number past 64 bits" "100 lseek(3, 99999999999999999999999, 0) = 0\n" 1
            fails "binary" "\001\002\003(\255" 1
            fails "a bad second line" "100 close(3) = 0\n100 close(3) = zero\n" 2
            fails "an unclosed string" "100 write(1, \"abc, 3) = 3" 1
            test "a 1 MiB write reads whole" {
                let data = Array.init (1 <<< 20) byte
                let hex = data |> Array.map (fun b -> $"\\x{b:x2}") |> String.concat ""

                match Strace.parse $"1 write(3</tmp/sf/w/a>, \"{hex}\", {data.Length}) = {data.Length}\n" with
                | Ok [ { Args = [ _; Bytes(read, false); _ ] } ] -> Expect.equal read data "the bytes"
                | other -> failtest $"%A{other}"
            }

            test "an empty recording is no calls" { Expect.equal (Strace.parse "") (Ok []) "empty" }
            test "signal and exit lines are skipped" {
                let lines =
                    Strace.parse "100 --- SIGCHLD {si_signo=SIGCHLD} ---\n100 +++ exited with 0 +++\n"

                Expect.equal lines (Ok []) "skipped"
            }
        ]

let private crashImages =
    test "crash images of every replayed state compute" {
        for file in Directory.GetFiles(fixtures, "*.txt") do
            let r = replayText (File.ReadAllText file)

            for s in r.Steps do
                for image in CrashImage.enumerate s.State 2 64 s.Number do
                    let after = CrashImage.crash s.State image
                    Expect.equal after.PendingNamespace [] $"{Path.GetFileName file} step {s.Number}"
    }

let private replayedFixtures =
    lazy
        (Directory.GetFiles(fixtures, "*.txt")
         |> Array.sort
         |> Array.map (File.ReadAllText >> replayText)
         |> Array.filter (fun r -> not r.Steps.IsEmpty))

let private ``a random crash image of any replayed state computes`` (pick: int) (at: int) (garbage: bool) (seed: int) =
    let index n i = ((i % n) + n) % n
    let all = replayedFixtures.Value
    let steps = Array.ofList all[index all.Length pick].Steps
    let state = steps[index steps.Length at].State
    let after = CrashImage.crash state (CrashImage.random state garbage seed)
    after.PendingNamespace = []

/// Runs a small workload under real strace in a temporary directory and checks that its replay
/// leaves exactly the files the real run left.
let private live =
    test "a live recording replays to the files the real run left" {
        let dir = Path.Combine(Path.GetTempPath(), $"strace-live-{Guid.NewGuid():N}")
        let root = Path.Combine(dir, "w")
        Directory.CreateDirectory root |> ignore

        try
            let script =
                String.concat
                    "\n"
                    [
                        "import os"
                        "os.mkdir('w/sub')"
                        "fd = os.open('w/sub/a', os.O_CREAT | os.O_RDWR | os.O_TRUNC, 0o644)"
                        "os.write(fd, b'hello world')"
                        "d = os.dup(fd); os.lseek(fd, 2, 0); os.write(d, b'XY')"
                        "os.fsync(fd); os.close(fd); os.close(d)"
                        "fd = os.open('w/b.tmp', os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o644)"
                        "os.write(fd, b'one'); os.pwrite(fd, b'two', 0); os.ftruncate(fd, 5); os.close(fd)"
                        "os.rename('w/b.tmp', 'w/b')"
                        "os.rename('w/sub', 'w/dir')"
                        "fd = os.open('w/gone', os.O_CREAT | os.O_WRONLY, 0o644); os.close(fd); os.unlink('w/gone')"
                        "d = os.open('w', os.O_RDONLY | os.O_DIRECTORY); os.fsync(d); os.close(d)"
                        "print('done', flush=True)"
                    ]

            File.WriteAllText(Path.Combine(dir, "workload.py"), script)
            let recording = Path.Combine(dir, "recording.txt")

            // The interpreter itself, not a shim (pyenv's) that would run children of its own.
            let python =
                let info =
                    ProcessStartInfo(
                        "python3",
                        [ "-c"; "import sys; print(sys.executable)" ],
                        RedirectStandardOutput = true,
                        UseShellExecute = false
                    )

                use p = Process.Start info
                let path = p.StandardOutput.ReadToEnd().Trim()
                p.WaitForExit()
                path

            let info =
                ProcessStartInfo(
                    "strace",
                    Strace.options recording @ [ python; "workload.py" ],
                    WorkingDirectory = dir,
                    RedirectStandardOutput = true,
                    UseShellExecute = false
                )

            use proc = Process.Start info
            let output = proc.StandardOutput.ReadToEnd()
            Expect.isTrue (proc.WaitForExit 60000) "strace finished"
            Expect.equal proc.ExitCode 0 "strace and the workload succeed"
            Expect.equal output "done\n" "the workload's answer"

            let r =
                match
                    Replay.ofText { Root = root; WorkingDirectory = dir } DiskState.empty (File.ReadAllText recording)
                with
                | Ok r -> r
                | Error e -> failwith $"line {e.Line} column {e.Column}: {e.Message}"

            let real =
                Directory.GetFiles(root, "*", SearchOption.AllDirectories)
                |> Array.map (fun f ->
                    "/" + Path.GetRelativePath(root, f), Encoding.Latin1.GetString(File.ReadAllBytes f))
                |> Array.sort
                |> List.ofArray

            let realDirs =
                Directory.GetDirectories(root, "*", SearchOption.AllDirectories)
                |> Array.map (fun d -> "/" + Path.GetRelativePath(root, d))
                |> Array.sort
                |> List.ofArray

            Expect.equal (current r.Final) real "the same files, with the same bytes"
            Expect.equal (directories r.Final) ("/" :: realDirs) "the same directories"
            Expect.equal r.Unmodelled [] "nothing unmodelled"

            Expect.equal
                (r.Acknowledgements |> List.map (fun a -> a.Text))
                [ "done" ]
                "the answer is an acknowledgement"
        finally
            Directory.Delete(dir, true)
    }

let tests =
    testList
        "StraceReplay"
        [
            fixtureTests
            parseErrors
            crashImages
            testPropertyWithConfig
                (fsCheck 200 [])
                "a random crash image of any replayed state computes"
                ``a random crash image of any replayed state computes``
            live
        ]
