/// Directories a WAL should not trust, on the real disk: a FIFO, a link to a device, a link to a
/// file outside the directory, or a directory where a segment should be, and Create through a
/// link. Each gets a typed error naming the file, promptly, and nothing outside the WAL's
/// directory is written.
module Wal.Properties.HostileDirectoryTests

open System
open System.Diagnostics
open System.IO
open System.Threading.Tasks
open Expecto
open Wal
open Wal.Properties.Support

let private second = "0000000000000001-0000000000000002.wal"
let private first = "0000000000000000-0000000000000000.wal"

/// A small sound log of two segments (entries 1 and 2) in `dir`; the second is what the
/// tests put something hostile in place of.
let private logIn (dir: string) =
    let options =
        WalOptions(SegmentSizeBytes = 64000L, PrepareSegmentsInBackground = false)

    use wal = WriteAheadLog.Create(dir, mem "m", options)
    wal.Save(HardState(1UL, 1UL, 0UL), [ Entry(1UL, 1UL, EntryType.Normal, mem "a") ])
    wal.Dispose()
    // A second segment, as a cut would name it, so a hostile file can take its place.
    File.Copy(Path.Combine(dir, first), Path.Combine(dir, second))

/// Runs `action` on a thread pool thread; fails the test when it has not ended in 30 s, so a
/// reader that blocks (on a FIFO's open) shows as a failure, not a hung suite.
let private promptly (what: string) (action: unit -> 'a) : 'a =
    let task = Task.Run(fun () -> action ())

    if not (task.Wait(TimeSpan.FromSeconds 30.0)) then
        failtest $"{what} did not return within 30 s"

    task.Result

/// The WalErrorKind each way in gives (OpenForRead, Open+ReadAll, Verify, Scan).
let private everyReader (dir: string) =
    let kind name (action: unit -> unit) =
        name, promptly name (fun () -> errorKind action)

    [
        kind "OpenForRead" (fun () ->
            use r = WriteAheadLog.OpenForRead(dir, Snapshot.Zero)
            r.ReadAll() |> ignore)
        kind "Open+ReadAll" (fun () ->
            use w = WriteAheadLog.Open(dir, Snapshot.Zero)
            w.ReadAll() |> ignore)
        kind "Verify" (fun () -> WalDirectory.Verify(dir, Snapshot.Zero) |> ignore)
        kind "Scan" (fun () -> WalDirectory.Scan dir |> Seq.iter ignore)
    ]

let private wal (args: string list) =
    promptly $"wal {args}" (fun () ->
        let out, err = new StringWriter(), new StringWriter()
        let oldOut, oldErr = Console.Out, Console.Error
        Console.SetOut out
        Console.SetError err

        let code =
            try
                Wal.Cli.Program.main (Array.ofList args)
            finally
                Console.SetOut oldOut
                Console.SetError oldErr

        code, out.ToString() + err.ToString())

let private expectRefused (dir: string) (what: string) =
    for name, kind in everyReader dir do
        Expect.equal kind (Some WalErrorKind.NotRegularFile) name

    for command in [ "verify"; "dump"; "check-dir" ] do
        let code, text = wal [ command; dir ]
        Expect.equal code 1 $"wal {command}: {text}"
        Expect.stringContains text second $"wal {command} names the file"
        Expect.stringContains text what $"wal {command} says what it is"

let private run (file: string) (args: string list) =
    use p = Process.Start(ProcessStartInfo(file, args, UseShellExecute = false))
    p.WaitForExit()
    Expect.equal p.ExitCode 0 $"{file} {args}"

let ``a FIFO named like a segment is refused at once by every reader and command`` () =
    use tmp = new TempDir()
    logIn tmp.Path
    File.Delete(Path.Combine(tmp.Path, second))
    run "mkfifo" [ Path.Combine(tmp.Path, second) ]
    expectRefused tmp.Path "a FIFO"

/// The real disk, where `change` is done to the segment `name` between the directory's listing
/// and its open: a race the listing cannot see.
let private changedAfterListing (name: string) (change: string -> unit) =
    let disk = Wal.Storage.LinuxFileSystem.Instance :> Wal.Storage.IFileSystem
    let mutable changed = false

    realDiskWith (fun path mode ->
        if Path.GetFileName path = name && not changed then
            changed <- true
            change path

        disk.OpenFile(path, mode))

let private swappedToFifo (name: string) =
    changedAfterListing name (fun path ->
        File.Delete path
        run "mkfifo" [ path ])

let ``a segment that becomes a FIFO after the listing is refused when opened`` () =
    for write in [ false; true ] do
        use tmp = new TempDir()
        logIn tmp.Path
        let options = WalOptions(FileSystem = swappedToFifo second)

        let kind =
            promptly "Open" (fun () ->
                errorKind (fun () ->
                    use log =
                        if write then
                            WriteAheadLog.Open(tmp.Path, Snapshot.Zero, options)
                        else
                            WriteAheadLog.OpenForRead(tmp.Path, Snapshot.Zero, options)

                    log.ReadAll() |> ignore))

        Expect.equal kind (Some WalErrorKind.NotRegularFile) $"write mode {write}"

let ``a segment removed after the listing is FileNotFound, and nothing opened stays open`` () =
    for write in [ false; true ] do
        use tmp = new TempDir()
        logIn tmp.Path
        let options = WalOptions(FileSystem = changedAfterListing second File.Delete)

        let kind =
            errorKind (fun () ->
                use log =
                    if write then
                        WriteAheadLog.Open(tmp.Path, Snapshot.Zero, options)
                    else
                        WriteAheadLog.OpenForRead(tmp.Path, Snapshot.Zero, options)

                log.ReadAll() |> ignore)

        Expect.equal kind (Some WalErrorKind.FileNotFound) $"write mode {write}"
        // The first segment was opened (and, to write, locked) before the second was missed:
        // it was let go, so a writer takes it now.
        use again = WriteAheadLog.Open(tmp.Path, Snapshot.Zero, WalOptions())
        Expect.equal (again.ReadAll().Entries.Count) 1 $"reopened after write mode {write}"

let ``a segment linked to /dev/zero is refused, never read without end`` () =
    use tmp = new TempDir()
    logIn tmp.Path
    File.Delete(Path.Combine(tmp.Path, second))
    File.CreateSymbolicLink(Path.Combine(tmp.Path, second), "/dev/zero") |> ignore
    expectRefused tmp.Path "a symbolic link"

let ``a directory named like a segment is refused, check-dir included`` () =
    use tmp = new TempDir()
    logIn tmp.Path
    File.Delete(Path.Combine(tmp.Path, second))
    Directory.CreateDirectory(Path.Combine(tmp.Path, second)) |> ignore
    expectRefused tmp.Path "a directory"

let ``a segment linked to a file outside is never written through: repair, open and append refuse`` () =
    use tmp = new TempDir()
    logIn tmp.Path
    let outside = Path.Combine(tmp.Root, "outside.wal")
    // The outside file holds a torn last segment, which repair would cut if it followed the link.
    let torn = File.ReadAllBytes(Path.Combine(tmp.Path, second))
    File.WriteAllBytes(outside, torn[.. Support.dataEndOf torn - 3])
    File.Delete(Path.Combine(tmp.Path, second))
    File.CreateSymbolicLink(Path.Combine(tmp.Path, second), outside) |> ignore
    let before = File.ReadAllBytes outside
    expectRefused tmp.Path "a symbolic link"
    let code, text = wal [ "repair"; tmp.Path ]
    Expect.equal code 1 text
    Expect.stringContains text "NotRegularFile" ""
    Expect.equal (errorKind (fun () -> WalDirectory.Repair tmp.Path |> ignore)) (Some WalErrorKind.NotRegularFile) ""
    Expect.equal (File.ReadAllBytes outside) before "the file outside is unchanged"
    Expect.isFalse (File.Exists(outside + ".broken")) "no .broken copy outside"

let ``repair's .broken copy is never written through a link`` () =
    use tmp = new TempDir()
    logIn tmp.Path
    File.Delete(Path.Combine(tmp.Path, second))
    let path = Path.Combine(tmp.Path, first)
    let bytes = File.ReadAllBytes path
    File.WriteAllBytes(path, bytes[.. Support.dataEndOf bytes - 3])
    let outside = Path.Combine(tmp.Root, "elsewhere")
    File.WriteAllText(outside, "keep me")
    File.CreateSymbolicLink(path + ".broken", outside) |> ignore
    Expect.equal (errorKind (fun () -> WalDirectory.Repair tmp.Path |> ignore)) (Some WalErrorKind.NotRegularFile) ""
    Expect.equal (File.ReadAllText outside) "keep me" ""

let ``Create through a link makes the log where the link leads, and leaves no DIR.tmp`` () =
    use tmp = new TempDir()
    let target = Path.Combine(tmp.Root, "target")
    Directory.CreateDirectory target |> ignore
    let link = Path.Combine(tmp.Root, "link")
    File.CreateSymbolicLink(link, target) |> ignore
    let dangling = Path.Combine(tmp.Root, "dangling")
    let nowhere = Path.Combine(tmp.Root, "not-yet")
    File.CreateSymbolicLink(dangling, nowhere) |> ignore

    for dir, lands in [ link, target; dangling, nowhere ] do
        do
            use wal = WriteAheadLog.Create(dir, mem "m")
            wal.Save(HardState(1UL, 1UL, 0UL), [ Entry(1UL, 1UL, EntryType.Normal, mem "a") ])

        Expect.isTrue (File.Exists(Path.Combine(lands, first))) $"{dir}: the log is in {lands}"
        Expect.isFalse (Directory.Exists(dir + ".tmp")) $"{dir}: no .tmp left beside the link"
        Expect.isFalse (Directory.Exists(lands + ".tmp")) $"{dir}: no .tmp left beside the target"
        use r = WriteAheadLog.OpenForRead(dir, Snapshot.Zero)
        Expect.equal (r.ReadAll().Entries.Count) 1 $"{dir}: read back through the link"

let ``a Create that fails leaves no DIR.tmp behind`` () =
    let fs, options = memoryOptions 65536L
    fs.Faults <- [ Wal.Simulation.OnPath(Wal.Simulation.DataSyncCall, "wal.tmp") ]
    let dir = "/data/wal"

    Expect.equal (errorKind (fun () -> WriteAheadLog.Create(dir, mem "m", options).Dispose())) (Some WalErrorKind.Io) ""

    let fsi = fs :> Wal.Storage.IFileSystem
    Expect.isFalse (fsi.DirectoryExists(dir + ".tmp")) "the temporary directory is removed"
    Expect.isFalse (fsi.DirectoryExists dir) "no log"

/// This file's tests.
let tests =
    testList
        "HostileDirectoryTests"
        [
            testCase
                "a FIFO named like a segment is refused at once by every reader and command"
                ``a FIFO named like a segment is refused at once by every reader and command``
            testCase
                "a segment linked to /dev/zero is refused, never read without end"
                ``a segment linked to /dev/zero is refused, never read without end``
            testCase
                "a directory named like a segment is refused, check-dir included"
                ``a directory named like a segment is refused, check-dir included``
            testCase
                "a segment linked to a file outside is never written through: repair, open and append refuse"
                ``a segment linked to a file outside is never written through: repair, open and append refuse``
            testCase
                "repair's .broken copy is never written through a link"
                ``repair's .broken copy is never written through a link``
            testCase
                "Create through a link makes the log where the link leads, and leaves no DIR.tmp"
                ``Create through a link makes the log where the link leads, and leaves no DIR.tmp``
            testCase "a Create that fails leaves no DIR.tmp behind" ``a Create that fails leaves no DIR.tmp behind``
            testCase
                "a segment removed after the listing is FileNotFound, and nothing opened stays open"
                ``a segment removed after the listing is FileNotFound, and nothing opened stays open``
            testCase
                "a segment that becomes a FIFO after the listing is refused when opened"
                ``a segment that becomes a FIFO after the listing is refused when opened``
        ]
