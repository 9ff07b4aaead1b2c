/// The simulated disk under odd writes: zero-length and odd-sized writes, truncates and syncs,
/// the power cut after every call, every crash image computed without an exception and holding
/// only what the disk model allows.
module Wal.Properties.DiskProperties

open System
open Expecto
open FsCheck
open FsCheck.FSharp
open Wal.Storage
open Wal.Simulation
open Wal.Properties.Support

/// A call on one file.
type FileCall =
    | WriteAt of offset: int * length: int * fill: byte
    | TruncateTo of length: int
    | DataSync

let private calls =
    let length =
        Gen.oneof
            [
                Gen.constant 0
                Gen.elements [ 1; 511; 512; 513; 1024 ]
                Gen.choose (0, 1500)
            ]

    Gen.frequency
        [
            5,
            Gen.map3 (fun o l f -> WriteAt(o, l, f)) (Gen.choose (0, 2000)) length (Gen.choose (1, 255) |> Gen.map byte)
            1, Gen.choose (0, 2500) |> Gen.map TruncateTo
            2, Gen.constant DataSync
        ]
    |> Gen.listOf

type Calls =
    static member Calls() = Arb.fromGen calls

let private bytesOf (c: Content) =
    let bytes = Array.zeroCreate<byte>(int c.Length)
    Content.read c 0L (Span bytes) |> ignore
    bytes

/// Whether a crashed file holds only what the model allows: bytes no pending change touches are
/// the durable ones; any other byte is durable data, zero, or a byte a pending write put there.
let private allowed (inode: Inode) (crashed: Content) =
    let durable = bytesOf inode.Durable
    let after = bytesOf crashed
    let pending = List.rev inode.Pending

    let lengths = pending |> List.scan Content.apply inode.Durable |> List.map _.Length

    let touched (p: int) =
        pending
        |> List.exists (function
            | Write(o, d) -> int64 p >= o && int64 p < o + int64 d.Length
            | Resize l -> int64 p >= l)

    let written (p: int) =
        pending
        |> List.choose (function
            | Write(o, d) when int64 p >= o && int64 p < o + int64 d.Length -> Some d[int (int64 p - o)]
            | _ -> None)

    crashed.Length <= List.max lengths
    && after
       |> Array.mapi (fun p b -> p, b)
       |> Array.forall (fun (p, b) ->
           let old = if p < durable.Length then Some durable[p] else None

           if not (touched p) then
               old = Some b || (old.IsNone && b = 0uy)
           else
               b = 0uy || old = Some b || List.contains b (written p))

let ``every crash image of odd writes, truncates and syncs is computed and allowed`` (calls: FileCall list) =
    let fs = SimulatedFileSystem()
    let states = ResizeArray<DiskState>()
    fs.Observe <- Some(fun _ state -> states.Add state)
    let files = fs :> IFileSystem
    use file = files.OpenFile("/f", OpenMode.CreateTruncate)
    files.SyncDirectory "/"
    // From here the name is durable; the calls below decide only the file's bytes.
    states.Clear()

    for call in calls do
        match call with
        | WriteAt(offset, length, fill) -> file.Write(int64 offset, ReadOnlySpan(Array.create length fill))
        | TruncateTo length -> file.Truncate(int64 length)
        | DataSync -> file.DataSync()

    states
    |> Seq.mapi (fun i state -> i, state)
    |> Seq.forall (fun (i, state) ->
        let id =
            match state.Current.TryFind "/f" with
            | Some(FileNode id) -> id
            | _ -> failtest "the file is gone"

        let images =
            CrashImage.enumerate state 2 200 i
            @ [ for seed in 0..3 -> CrashImage.random state false (i * 7 + seed) ]

        images
        |> List.forall (fun image ->
            let crashed = CrashImage.crash state image

            match crashed.Current.TryFind "/f" with
            | Some(FileNode id') when id' = id -> allowed state.Inodes[id] crashed.Inodes[id].Current
            | other -> failtest $"the file is {other} after a crash"))

let ``a zero-length write then a power cut is no error`` () =
    let fs = SimulatedFileSystem()
    let files = fs :> IFileSystem
    use file = files.OpenFile("/f", OpenMode.CreateTruncate)
    file.Write(0L, ReadOnlySpan(Array.create 10 7uy))
    file.Write(4096L, ReadOnlySpan<byte>.Empty)
    Expect.equal file.Length 10L "a zero-length write past the end does not grow the file"

    for seed in 0..50 do
        fs.AfterPowerCut seed |> ignore

    for image in CrashImage.enumerate fs.State 2 100 1 do
        CrashImage.crash fs.State image |> ignore

/// This file's tests.
let tests =
    testList
        "DiskProperties"
        [
            testCase
                "a zero-length write then a power cut is no error"
                ``a zero-length write then a power cut is no error``
            testPropertyWithConfig
                (fsCheck 150 [ typeof<Calls> ])
                "every crash image of odd writes, truncates and syncs is computed and allowed"
                ``every crash image of odd writes, truncates and syncs is computed and allowed``
        ]
