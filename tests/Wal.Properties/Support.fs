/// Small helpers the suites share: in-memory logs, error kinds, temporary directories, and
/// FsCheck's settings for a property.
module Wal.Properties.Support

open System
open System.IO
open Expecto
open Wal
open Wal.Simulation

/// Options over a fresh in-memory file system, deterministic (no background preallocation).
let memoryOptions (segmentSize: int64) =
    let fs = SimulatedFileSystem()
    fs, WalOptions(FileSystem = fs, SegmentSizeBytes = segmentSize, PrepareSegmentsInBackground = false)

/// `options` reading and writing as etcd 3.4 does, without raft's invariants: for logs etcd
/// wrote (or tests write) that raft never would.
let lenient (options: WalOptions) =
    WalOptions(
        FileSystem = options.FileSystem,
        SegmentSizeBytes = options.SegmentSizeBytes,
        MaxRecordBytes = options.MaxRecordBytes,
        PrepareSegmentsInBackground = options.PrepareSegmentsInBackground,
        CheckRaftInvariants = false
    )

/// A frame found in a segment's bytes: where it starts, its whole size, and its record type.
type Framed = { Offset: int; Size: int; Type: int }

/// The whole frames of a segment, as the reference decoder (Wal.Model.Segments) reads them up to
/// where its data ends (a torn frame is not listed).
let framesOf (file: byte[]) =
    (Wal.Model.Segments.decode [ "segment", file ]).Records
    |> List.map (fun record ->
        {
            Offset = int record.Offset
            Size = Wal.Format.Frame.SizeOf(Wal.Format.RecordCodec.RecordSize(record.Crc, record.Data.Length))
            Type = int record.Type
        })

/// Where a segment's data ends: just past its last whole frame.
let dataEndOf (file: byte[]) =
    match List.tryLast (framesOf file) with
    | Some last -> last.Offset + last.Size
    | None -> 0

/// The kind of the WalException an action throws, or None when it returns.
let errorKind (action: unit -> unit) =
    try
        action ()
        None
    with :? WalException as ex ->
        Some ex.Kind

/// A fresh, not yet existing directory under the system's temp folder, removed on Dispose.
type TempDir() =
    let root = Path.Combine(Path.GetTempPath(), $"wal-tests-{Guid.NewGuid():N}")
    do Directory.CreateDirectory root |> ignore
    /// A path inside the temp folder that does not exist yet.
    member _.Path = Path.Combine(root, "wal")
    member _.Root = root

    interface IDisposable with
        member _.Dispose() =
            try
                Directory.Delete(root, true)
            with _ ->
                ()

/// A file that passes every call to `inner`. Being a type of the test's own, it is read by one
/// thread and never mapped, as any file of a plugged-in file system; a test overrides Write and
/// DataSync to watch what the log writes and syncs.
type PassThroughFile(inner: Wal.Storage.IStorageFile) =
    abstract Write: offset: int64 * data: ReadOnlySpan<byte> -> unit
    default _.Write(offset, data) = inner.Write(offset, data)
    abstract DataSync: unit -> unit
    default _.DataSync() = inner.DataSync()

    interface Wal.Storage.IStorageFile with
        member _.Length = inner.Length
        member _.Read(offset, buffer) = inner.Read(offset, buffer)
        member this.Write(offset, data) = this.Write(offset, data)
        member this.DataSync() = this.DataSync()
        member _.Sync() = inner.Sync()
        member _.Truncate length = inner.Truncate length
        member _.Preallocate length = inner.Preallocate length
        member _.TryLock() = inner.TryLock()
        member _.Dispose() = inner.Dispose()

/// The real file system with its OpenFile replaced by `openFile`, and its answer to whether
/// preallocated space needs converting replaced by `converts` when given (btrfs, ZFS and tmpfs
/// say false): every other call goes to the disk.
let realDiskAnswering (converts: bool option) (openFile: string -> Wal.Storage.OpenMode -> Wal.Storage.IStorageFile) =
    let disk = Wal.Storage.LinuxFileSystem.Instance :> Wal.Storage.IFileSystem

    { new Wal.Storage.IFileSystem with
        member _.OpenFile(path, mode) = openFile path mode
        member _.FileExists path = disk.FileExists path
        member _.DirectoryExists path = disk.DirectoryExists path
        member _.ListDirectory path = disk.ListDirectory path
        member _.CreateDirectory path = disk.CreateDirectory path
        member _.RemoveFile path = disk.RemoveFile path
        member _.RemoveDirectoryRecursive path = disk.RemoveDirectoryRecursive path
        member _.Rename(from, target) = disk.Rename(from, target)
        member _.ResolveLinks path = disk.ResolveLinks path
        member _.SyncDirectory path = disk.SyncDirectory path

        member _.ConvertsPreallocatedSpace directory =
            converts
            |> Option.defaultWith (fun () -> disk.ConvertsPreallocatedSpace directory)
    }

/// The real file system with its OpenFile replaced by `openFile`: every other call goes to the disk.
let realDiskWith (openFile: string -> Wal.Storage.OpenMode -> Wal.Storage.IStorageFile) =
    realDiskAnswering None openFile

let bytes (s: string) = Text.Encoding.UTF8.GetBytes s
let mem (s: string) = ReadOnlyMemory(bytes s)

/// The first segment's file name.
let firstSegment = "0000000000000000-0000000000000000.wal"

/// Where the test program runs from: the corpus is copied beside it.
let testDirectory = AppContext.BaseDirectory

/// The repository (the folder holding Wal.sln), found upwards from the test program.
let repository =
    let rec up (dir: DirectoryInfo) =
        if isNull dir then
            failwith "Wal.sln not found above the test program"
        elif File.Exists(Path.Combine(dir.FullName, "Wal.sln")) then
            dir.FullName
        else
            up dir.Parent

    lazy (up (DirectoryInfo testDirectory))

/// A path inside the repository.
let repoFile (parts: string list) =
    Path.Combine(repository.Value :: parts |> Array.ofList)

/// Asserts that the action throws a WalException and returns it.
let expectWalError (action: unit -> unit) : WalException =
    match
        (try
            action ()
            None
         with :? WalException as ex ->
             Some ex)
    with
    | Some ex -> ex
    | None -> failtest "expected a WalException, but the call returned"

/// One test per case, each named for its argument: a list of cases under one name, as Expecto
/// groups what NUnit's [<TestCase>] listed.
let testCases (name: string) (show: 'a -> string) (cases: 'a list) (test: 'a -> unit) =
    testList name [ for case in cases -> testCase (show case) (fun () -> test case) ]

/// A 64-bit length word as it reads in a hex dump.
let hexWord (word: uint64) = $"0x{word:X16}"

/// An upper bound on every property's cases, from WAL_PROPERTY_TESTS: the mutation bridge
/// (tests/Wal.Mutation) sets it, because Stryker repeats the suites for every mutant that survives.
let private casesCap () =
    match Environment.GetEnvironmentVariable "WAL_PROPERTY_TESTS" with
    | null -> None
    | text ->
        match Int32.TryParse text with
        | true, cap when cap > 0 -> Some cap
        | _ -> failwith $"WAL_PROPERTY_TESTS must be a positive number, not '{text}'"

/// A failing case to run again, from WAL_PROPERTY_REPLAY: the three numbers of the
/// `etestPropertyWithConfig (seed, gamma, size)` line a failure prints, as "seed,gamma,size"
/// (with a filter that selects that one property).
let private replay () =
    match Environment.GetEnvironmentVariable "WAL_PROPERTY_REPLAY" with
    | null
    | "" -> None
    | text ->
        match text.Split(',', StringSplitOptions.TrimEntries) with
        | [| seed; gamma; size |] ->
            let number (s: string) = s.TrimEnd('U', 'L')

            Some(
                UInt64.Parse(number seed),
                UInt64.Parse(number gamma),
                Some(Int32.Parse(size.Replace("Some", "").Trim()))
            )
        | _ -> failwith $"WAL_PROPERTY_REPLAY must be 'seed,gamma,size', not '{text}'"

/// FsCheck's settings for one property: `tests` cases (at most WAL_PROPERTY_TESTS, when it is set),
/// sizes from 1 to 100 (FsCheck's defaults, as the suites always ran them), and the generators of
/// these Arbitrary types.
let fsCheck (tests: int) (arbitrary: Type list) : FsCheckConfig =
    { FsCheckConfig.defaultConfig with
        maxTest = casesCap () |> Option.fold (fun _ cap -> min cap tests) tests
        startSize = 1
        endSize = 100
        arbitrary = arbitrary
        replay = replay ()
    }
