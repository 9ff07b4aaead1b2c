/// Wal.FSharp and the F#-facing parts of Wal.Core's values: active patterns, ReadAll's outcome
/// as a value, the model conversions, named arguments, and what the values print.
module Wal.Properties.FSharpSurfaceTests

open System
open Expecto
open FsCheck
open FsCheck.FSharp
open Wal
open Wal.FSharp
open Wal.Properties.Support

/// A log in memory with two entries and a snapshot marker at 1/1, and its options.
let private smallLog () =
    let _, options = memoryOptions 4096L

    do
        use wal = WriteAheadLog.Create("/w", "node-1", options)

        wal.Save(
            HardState(term = 1UL, vote = 1UL, commit = 2UL),
            [| Entry(1UL, 1UL, "put a=1"); Entry(1UL, 2UL, "put b=2") |]
        )

        wal.SaveSnapshot(Snapshot(index = 1UL, term = 1UL))

    options

let private outcomeAt (snapshot: Snapshot) (options: WalOptions) =
    use wal = WriteAheadLog.OpenForRead("/w", snapshot, options)
    ReadOutcome.readAll wal

/// Every Save's state and entries, and every snapshot, of the model's raft-like runs.
let private saved =
    Wal.Oracle.Scenarios.steps false
    |> Gen.map (fun steps ->
        [
            for step in steps do
                match step with
                | Wal.Model.Do(Wal.Model.Save(state, entries)) -> yield state, entries, None
                | Wal.Model.Do(Wal.Model.SaveSnapshot s) -> yield Wal.Model.HardState.empty, [], Some s
                | _ -> ()
        ])

let private roundTrips (saves: (Wal.Model.HardState * Wal.Model.Entry list * Wal.Model.Snapshot option) list) =
    saves
    |> List.forall (fun (state, entries, snapshot) ->
        let contents: Wal.Model.Contents =
            {
                Metadata = "node-1"B
                State = state
                Entries = entries
            }

        ModelConvert.ofHardState (ModelConvert.toHardState state) = state
        && entries
           |> List.forall (fun e -> ModelConvert.ofEntry (ModelConvert.toEntry e) = e)
        && ModelConvert.ofContents (ModelConvert.toContents contents) = contents
        && (ModelConvert.toContents contents) =
            (ModelConvert.toContents (ModelConvert.ofContents (ModelConvert.toContents contents)))
        && snapshot
           |> Option.forall (fun s -> ModelConvert.ofSnapshot (ModelConvert.toSnapshot s) = s))

/// This file's tests.
let tests =
    testList
        "FSharpSurfaceTests"
        [
            test "an entry, a hard state and a snapshot match by their active patterns" {
                let (Entry(term, index, kind, Utf8 text)) =
                    Entry(term = 1UL, index = 2UL, data = "put a=1")

                Expect.equal (term, index, kind, text) (1UL, 2UL, EntryType.Normal, "put a=1") "entry"
                let (HardState(t, v, c)) = HardState(1UL, 2UL, 3UL)
                Expect.equal (t, v, c) (1UL, 2UL, 3UL) "hard state"
                let (Snapshot(i, t)) = Snapshot(index = 2UL, term = 1UL)
                Expect.equal (i, t) (2UL, 1UL) "snapshot: index first"
                let (Entry(_, _, _, Bytes raw)) = Entry(1UL, 1UL, [| 1uy; 2uy |])
                Expect.equal raw [| 1uy; 2uy |] "bytes"
            }

            test "named arguments read the same in every constructor, and C#'s Deconstruct splits" {
                let a =
                    Entry(term = 1UL, index = 2UL, ``type`` = EntryType.ConfChange, data = ReadOnlyMemory "x"B)

                let b = Entry(1UL, 2UL, EntryType.ConfChange, ReadOnlyMemory "x"B)
                Expect.equal a b "entry by name and by position"
                Expect.equal (Entry(term = 1UL, index = 2UL, data = "x")) (Entry(1UL, 2UL, "x"B)) "string and bytes"
                Expect.equal (Snapshot(term = 1UL, index = 2UL)) (Snapshot(2UL, 1UL)) "snapshot"
                Expect.equal (HardState(commit = 3UL, term = 1UL, vote = 2UL)) (HardState(1UL, 2UL, 3UL)) "state"
                let mutable term = 0UL
                let mutable index = 0UL
                let mutable data = ReadOnlyMemory<byte>.Empty
                b.Deconstruct(&term, &index, &data)
                Expect.equal (term, index, data.Length) (1UL, 2UL, 1) "Deconstruct"
                let mutable vote = 0UL
                let mutable commit = 0UL
                HardState(4UL, 5UL, 6UL).Deconstruct(&term, &vote, &commit)
                Expect.equal (term, vote, commit) (4UL, 5UL, 6UL) "a hard state's Deconstruct"
                Snapshot(7UL, 8UL).Deconstruct(&index, &term)
                Expect.equal (index, term) (7UL, 8UL) "a snapshot's Deconstruct"
                Expect.equal (Entry(1UL, 1UL, (null: string)).Data.Length) 0 "null is empty"
                Expect.equal (Entry(1UL, 1UL, "é").DataAsString()) "é" "UTF-8 both ways"
            }

            test "a read is Read, with contents that match as a list" {
                match outcomeAt Snapshot.Zero (smallLog ()) with
                | ReadOutcome.Read(Contents(Utf8 metadata,
                                            HardState(term, _, commit),
                                            [ Entry(_, 1UL, _, Utf8 first); _ ])) ->
                    Expect.equal (metadata, term, commit, first) ("node-1", 1UL, 2UL, "put a=1") "contents"
                | other -> failtest $"{other}"
            }

            test "a missing snapshot is NotFound, with what was read" {
                match outcomeAt (Snapshot(index = 2UL, term = 1UL)) (smallLog ()) with
                | ReadOutcome.NotFound(Contents(_, _, entries)) ->
                    Expect.equal (entries |> List.map _.Index) [] "nothing after index 2"
                | other -> failtest $"{other}"
            }

            test "an error is Error with its kind; get gives the exception back" {
                let mismatch = outcomeAt (Snapshot(index = 1UL, term = 2UL)) (smallLog ())

                match mismatch with
                | ReadOutcome.Error(WalErrorKind.SnapshotMismatch, message) -> Expect.isNonEmpty message "message"
                | other -> failtest $"{other}"

                Expect.equal
                    (expectWalError (fun () -> ReadOutcome.get mismatch |> ignore)).Kind
                    WalErrorKind.SnapshotMismatch
                    "get"

                Expect.isNone (ReadOutcome.contents mismatch) "no contents"

                match ReadOutcome.read "/nonexistent/wal-fsharp-surface" Snapshot.Zero with
                | ReadOutcome.Error(WalErrorKind.FileNotFound, _) -> ()
                | other -> failtest $"{other}"
            }

            test "the outcome agrees with the exception API" {
                let options = smallLog ()

                use wal =
                    WriteAheadLog.OpenForRead("/w", Snapshot(index = 2UL, term = 1UL), options)

                let ex = expectWalError (fun () -> wal.ReadAll() |> ignore)

                match ex.TryGetContents(), ReadOutcome.ofException ex with
                | (true, contents), ReadOutcome.NotFound same -> Expect.equal contents same "contents"
                | other -> failtest $"{other}"
            }

            testPropertyWithConfig
                (fsCheck 100 [])
                "the model's values convert to the engine's and back unchanged"
                (Prop.forAll (Arb.fromGen saved) roundTrips)

            test "the engine's outcome converts to the model's" {
                let model = ModelConvert.ofReadOutcome (outcomeAt Snapshot.Zero (smallLog ()))

                match model with
                | Some(Wal.Model.Read c) ->
                    Expect.equal (c.Entries |> List.map _.Data) [ "put a=1"B; "put b=2"B ] "entries"
                | other -> failtest $"{other}"

                Expect.equal
                    (ModelConvert.ofReadOutcome (ReadOutcome.Error(WalErrorKind.CrcMismatch, "")))
                    None
                    "corruption is outside the model"
            }

            test "ToString and %A print the values, not their plumbing" {
                let state = HardState(1UL, 2UL, 3UL)
                Expect.equal (string state) "HardState(term=1, vote=2, commit=3)" "HardState"
                Expect.equal (sprintf "%A" state) (string state) "%A of HardState"
                Expect.equal (string (Entry(1UL, 2UL, "put a=1"))) "Entry(term=1, index=2, 7 B \"put a=1\")" "text data"

                Expect.equal
                    (string (Entry(1UL, 2UL, EntryType.ConfChange, ReadOnlyMemory [| 0uy; 255uy |])))
                    "Entry(term=1, index=2, ConfChange, 2 B 0x00ff)"
                    "binary data"

                Expect.equal
                    (string (Entry(1UL, 2UL, String('a', 20))))
                    "Entry(term=1, index=2, 20 B \"aaaaaaaaaaaaaaaa...\")"
                    "long data"

                Expect.equal (string (Entry(1UL, 2UL, ""))) "Entry(term=1, index=2, 0 B)" "no data"
                Expect.equal (string (Snapshot(index = 2UL, term = 1UL))) "Snapshot(index=2, term=1)" "Snapshot"

                Expect.equal
                    (sprintf "%A" (Snapshot(index = 2UL, term = 1UL)))
                    "Snapshot(index=2, term=1)"
                    "%A of Snapshot"

                match outcomeAt Snapshot.Zero (smallLog ()) with
                | ReadOutcome.Read contents ->
                    Expect.equal
                        (string contents)
                        "ReadAllResult(metadata=6 bytes, HardState(term=1, vote=1, commit=2), 2 entries)"
                        "ReadAllResult"

                    let printed = sprintf "%A" (ReadOutcome.Read contents)
                    Expect.stringContains printed "HardState(term=1, vote=1, commit=2)" "%A of an outcome"
                    Expect.isFalse (printed.Contains "IsEmpty") "no IsEmpty"
                | other -> failtest $"{other}"
            }
        ]
