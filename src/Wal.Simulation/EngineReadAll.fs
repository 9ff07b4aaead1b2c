/// Wal.Core's ReadAll in ReadAll's JSON schema (Wal.Oracle.ReadAllJson): what `wal dump --json`
/// prints and what the etcd cross-checks compare with etcd's own ReadAll.
module Wal.Simulation.EngineReadAll

open Wal
open Wal.Oracle

let private withContents (contents: ReadAllResult) (dump: ReadAllJson.Dump) =
    { dump with
        Metadata = contents.Metadata.ToArray()
        Term = contents.State.Term
        Vote = contents.State.Vote
        Commit = contents.State.Commit
        Entries =
            [
                for e in contents.Entries ->
                    {
                        Term = e.Term
                        Index = e.Index
                        Type = int e.Type
                        Data = e.Data.ToArray()
                    }
            ]
    }

/// The schema's view of a ReadAll at `snapshot`; an error is named by its WalErrorKind.
let ofResult (snapshot: Snapshot) (result: Result<ReadAllResult, WalException>) : ReadAllJson.Dump =
    let empty = ReadAllJson.empty snapshot.Index snapshot.Term

    match result with
    | Ok contents -> empty |> withContents contents
    | Error e ->
        let dump =
            if e.Kind = WalErrorKind.SnapshotNotFound && e.Contents.HasValue then
                empty |> withContents e.Contents.Value
            else
                empty

        { dump with
            Error = Some(string e.Kind)
        }

/// Opens `dir` at `snapshot` with `options` and reads it with the engine. Read-only
/// (OpenForRead) unless `write`, which opens as a writer does (Open), zeroing a torn tail as
/// etcd's Open does.
let readWith (options: WalOptions) (dir: string) (snapshot: Snapshot) (write: bool) =
    let result =
        try
            use wal =
                if write then
                    WriteAheadLog.Open(dir, snapshot, options)
                else
                    WriteAheadLog.OpenForRead(dir, snapshot, options)

            Ok(wal.ReadAll())
        with :? WalException as e ->
            Error e

    ofResult snapshot result

/// `readWith` the default options (raft's invariants checked).
let read (dir: string) (snapshot: Snapshot) (write: bool) =
    readWith WalOptions.Default dir snapshot write

/// Options that read as etcd 3.4 does: no raft invariants.
let lenient = WalOptions(CheckRaftInvariants = false)
