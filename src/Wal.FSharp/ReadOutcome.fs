namespace Wal.FSharp

open Wal

/// What ReadAll gave, as a value to match rather than an exception to catch. The cases are
/// qualified (`ReadOutcome.Read`) so that they shadow neither `Result.Error` nor
/// `Wal.Model.ReadOutcome`'s cases.
[<RequireQualifiedAccess>]
type ReadOutcome =
    /// The log read cleanly from the snapshot it was opened at.
    | Read of ReadAllResult
    /// The log holds no record of the snapshot it was opened at (etcd's ErrSnapshotNotFound);
    /// what was read is returned all the same, as etcd returns it.
    | NotFound of ReadAllResult
    /// Any other failure: its kind and message, as the WalException said.
    | Error of WalErrorKind * message: string

/// Running ReadAll for an outcome, beside the exception API of `WriteAheadLog.ReadAll`.
[<RequireQualifiedAccess>]
module ReadOutcome =

    /// The outcome of a WalException that ReadAll threw.
    let ofException (ex: WalException) =
        match ex.Kind, ex.TryGetContents() with
        | WalErrorKind.SnapshotNotFound, (true, contents) -> ReadOutcome.NotFound contents
        | kind, _ -> ReadOutcome.Error(kind, ex.Message)

    /// Calls `wal.ReadAll()`. A log opened with `Open` is then ready to append, whatever the
    /// outcome; the caller still owns and disposes it.
    let readAll (wal: WriteAheadLog) =
        try
            ReadOutcome.Read(wal.ReadAll())
        with :? WalException as ex ->
            ofException ex

    /// Opens `dir` read-only at `snapshot`, reads it and closes it. Opening can fail too (no
    /// log, a locked file, I/O): that is an `Error` as well.
    let read (dir: string) (snapshot: Wal.Snapshot) =
        try
            use wal = WriteAheadLog.OpenForRead(dir, snapshot)
            readAll wal
        with :? WalException as ex ->
            ofException ex

    /// The contents, when there are any (`Read` or `NotFound`).
    let contents (outcome: ReadOutcome) =
        match outcome with
        | ReadOutcome.Read c
        | ReadOutcome.NotFound c -> Some c
        | ReadOutcome.Error _ -> None

    /// Back to the exception API: the contents of a `Read`, or the WalException the outcome stands for.
    let get (outcome: ReadOutcome) =
        match outcome with
        | ReadOutcome.Read c -> c
        | ReadOutcome.NotFound c ->
            raise (WalException(WalErrorKind.SnapshotNotFound, "no snapshot record matches the snapshot", Contents = c))
        | ReadOutcome.Error(kind, message) -> raise (WalException(kind, message))
