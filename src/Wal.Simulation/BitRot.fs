/// Bit rot on a cleanly closed log: one flipped durable bit must read as everything written or
/// as a typed error, never as other entries, short of what etcd's format itself cannot see.
module Wal.Simulation.BitRot

open System
open Wal
open Wal.Model
open Wal.Simulation.Convert
open Wal.Simulation.Harness

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

/// Runs the operations cleanly, closes the log, flips one durable bit (chosen by `seed`) and
/// reads the log in write mode: the result must be everything written, or a typed error; never
/// other entries. None when it is.
let rotAndRead (segmentSize: int64) (steps: Step list) (seed: int) : string option =
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
    let model = Durability.synced model

    match CrashImage.rot fs.State seed with
    | None -> None
    | Some(rotten, (path, offset)) ->
        let rotFs = SimulatedFileSystem(rotten)

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
        | Model(Failed _) -> None
        // Limits of etcd's format, not of the engine: a record's type lies outside its CRC (which
        // covers the data alone), so a flip there can turn an entry into a hard state; and a flip
        // that zeroes the last record's length word reads as the end of the data.
        | _ when formatCannotSee fs.State rotten path offset -> None
        | _ ->
            judge (Durability.allowedAfterCrash Snapshot.zero model) false observed
            |> Option.map (fun m -> $"bit rot at {path} byte {offset}: {m}")
