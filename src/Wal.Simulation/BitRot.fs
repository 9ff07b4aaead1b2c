/// Bit rot on a cleanly closed log: one flipped durable bit must read as everything written or
/// as a typed error, never as other entries, short of what etcd's format itself cannot see.
module Wal.Simulation.BitRot

open System
open Wal
open Wal.Model
open Wal.Simulation.Convert
open Wal.Simulation.Harness

/// What one flipped durable bit did to a read of the log.
type RotVerdict =
    /// A typed error (CRC, corrupt record, too large, torn).
    | Reported
    /// Everything written, as the model allows.
    | ReadAsWritten
    /// A flip etcd's format cannot see (a record's type byte, which is outside its CRC, or a
    /// length word zeroed into the end of the data) leaving a log that keeps every invariant
    /// check-dir knows, raft's included: no checker could tell it from a legal log.
    | Indistinguishable
    /// Read as something else, with why.
    | Wrong of string

/// Whether a flip at a file offset is one etcd's format cannot detect: the flip hits a record's
/// type byte (frame start + 8 for the length word + 1 for the type's tag), or turns a length word
/// into zero. The frames are the reference decoder's (Wal.Model.Segments).
let private formatCannotSee (before: DiskState) (after: DiskState) (path: string) (offset: int64) =
    let contentOf (state: DiskState) =
        match state.Durable.TryFind path with
        | Some(FileNode id) ->
            let c = state.Inodes[id].Durable
            let bytes = Array.zeroCreate<byte>(int c.Length)
            Content.read c 0L (Span bytes) |> ignore
            Some bytes
        | _ -> None

    match contentOf before, contentOf after with
    | Some content, Some rotten ->
        (Segments.decode [ path, content ]).Records
        |> List.exists (fun r ->
            offset = r.Offset + 9L
            || (offset >= r.Offset
                && offset < r.Offset + 8L
                && BitConverter.ToUInt64(rotten, int r.Offset) = 0UL))
    | _ -> false

/// The error-level problems check-dir finds in the log a disk holds.
let private checkDir (fs: SimulatedFileSystem) =
    let names = fs.List Directory

    let read name =
        fs.ReadAllBytes(IO.Path.Combine(Directory, name))

    DirectoryCheck.check names (fun n -> int64 (read n).Length) read
    |> List.filter (DirectoryCheck.isWarning >> not)

/// Runs the operations cleanly and closes the log: the disk and the model of what it holds.
let private cleanLog (segmentSize: int64) (steps: Step list) =
    let fs = SimulatedFileSystem(DiskState.empty)
    let options = optionsFor fs segmentSize
    let mutable wal: WriteAheadLog option = None
    let mutable model = Durability.none

    for step in steps do
        match step, wal with
        | Do(Create m as operation), None ->
            wal <- Some(WriteAheadLog.Create(Directory, ReadOnlyMemory m, options))
            model <- Durability.acknowledged model operation
        | Do(Save _ | SaveSnapshot _ | Sync | ReleaseLockTo _ as operation), Some log ->
            perform log operation
            model <- Durability.acknowledged model operation
        | _ -> ()

    wal |> Option.iter (fun w -> w.Dispose())
    fs, Durability.synced model

/// Reads a damaged disk in write mode and judges it; `formatBlind` when the damage is one etcd's
/// format cannot see.
let private judgeRotten segmentSize (model: DurableLog) (rotFs: SimulatedFileSystem) formatBlind (where: string) =
    let observed =
        try
            use log =
                WriteAheadLog.Open(Directory, Wal.Snapshot.Zero, optionsFor rotFs segmentSize)

            readOutcome log
        with :? WalException as ex ->
            OtherError(ex.Kind, ex.Message)

    match observed with
    | OtherError((WalErrorKind.CrcMismatch | WalErrorKind.CorruptRecord | WalErrorKind.RecordTooLarge | WalErrorKind.UnexpectedEof),
                 _)
    | Model(Failed _) -> Reported
    | _ ->
        match judge (Durability.allowedAfterCrash Snapshot.zero model) false observed with
        | None -> ReadAsWritten
        // Limits of etcd's format: a record's type lies outside its CRC (which covers the data
        // alone), so a flip there can turn an entry into a hard state; and a flip that zeroes
        // the last record's length word reads as the end of the data. Raft's invariants see
        // most such logs; what check-dir sees, the engine must report.
        | Some _ when formatBlind ->
            match checkDir rotFs with
            | [] -> Indistinguishable
            | problems ->
                let shown = problems |> List.map DirectoryCheck.describe |> String.concat "; "
                Wrong $"{where} read through, though check-dir sees: {shown}"
        | Some m -> Wrong $"{where}: {m}"

/// Runs the operations cleanly, closes the log, flips one durable bit (chosen by `seed`) and
/// reads the log in write mode: the result must be everything written or a typed error, or a
/// log no checker can tell from a legal one; never other entries that a check could see.
let rotAndRead (segmentSize: int64) (steps: Step list) (seed: int) : RotVerdict =
    let fs, model = cleanLog segmentSize steps

    match CrashImage.rot fs.State seed with
    | None -> ReadAsWritten
    | Some(rotten, (path, offset)) ->
        judgeRotten
            segmentSize
            model
            (SimulatedFileSystem(rotten))
            (formatCannotSee fs.State rotten path offset)
            $"bit rot at {path} byte {offset}"

/// Every record of the cleanly closed log retyped, one at a time, to each other record type (the
/// type byte lies outside etcd's CRC): each verdict, with where.
let retypeEach (segmentSize: int64) (steps: Step list) : (string * RotVerdict) list =
    let fs, model = cleanLog segmentSize steps

    [
        for name in fs.List Directory do
            if name.EndsWith ".wal" then
                let path = IO.Path.Combine(Directory, name)
                let bytes = fs.ReadAllBytes path

                for r in (Segments.decode [ name, bytes ]).Records do
                    for t in 1L .. 5L do
                        if t <> r.Type then
                            let rotFs = SimulatedFileSystem(fs.State)
                            let retyped = Array.copy bytes
                            retyped[int r.Offset + 9] <- byte t
                            rotFs.WriteAllBytes(path, retyped)
                            let where = $"{name} at {r.Offset}: type {r.Type} retyped {t}"
                            yield where, judgeRotten segmentSize model rotFs true where
    ]
