/// The engine against the model, without crashes: for any raft-like sequence of operations,
/// every ReadAll the engine gives equals the model's, error kinds included.
module Wal.Properties.ModelProperties

open System
open FsCheck
open FsCheck.FSharp
open FsCheck.NUnit
open Wal
open Wal.Model
open Wal.Properties.Support

/// What the generator knows of the raft log so far, so that it only asks for what raft does:
/// overwrites only above the commit index and the last snapshot, snapshots only of committed
/// entries, entries carrying a non-empty hard state.
type private Raft =
    {
        Term: uint64
        Vote: uint64
        Commit: uint64
        Terms: Map<uint64, uint64>
        LastIndex: uint64
        Snapshots: Wal.Model.Snapshot list
    }

let private payload =
    Gen.frequency [ 6, Gen.choose (0, 64); 3, Gen.choose (65, 1500); 1, Gen.choose (1501, 9000) ]
    |> Gen.bind (fun n -> Gen.arrayOfLength n (Gen.choose (0, 255) |> Gen.map byte))

let private save (raft: Raft) =
    gen {
        let! newTerm =
            Gen.frequency [ 4, Gen.constant raft.Term; 1, Gen.constant (raft.Term + 1UL) ]

        let! vote =
            Gen.frequency [ 4, Gen.constant raft.Vote; 1, Gen.choose (1, 5) |> Gen.map uint64 ]

        let floor =
            max raft.Commit (raft.Snapshots |> List.fold (fun m s -> max m s.Index) 0UL)

        let! first = Gen.choose (int floor + 1, int raft.LastIndex + 1) |> Gen.map uint64
        let! count = Gen.frequency [ 1, Gen.constant 0; 6, Gen.choose (1, 4) ]
        let! payloads = Gen.listOfLength count payload

        let! kinds =
            Gen.listOfLength count (Gen.frequency [ 8, Gen.constant 0; 1, Gen.choose (1, 2) ])

        let entries =
            List.zip payloads kinds
            |> List.mapi (fun i (data, kind) ->
                {
                    Term = newTerm
                    Index = first + uint64 i
                    Kind = kind
                    Data = data
                })

        let last =
            if count = 0 then
                raft.LastIndex
            else
                first + uint64 count - 1UL

        let! commit =
            Gen.choose (int raft.Commit, int (if count = 0 then min last raft.LastIndex else last))
            |> Gen.map uint64

        let commit = max commit raft.Commit

        let state: Wal.Model.HardState =
            {
                Term = newTerm
                Vote = vote
                Commit = commit
            }

        let terms =
            entries
            |> List.fold
                (fun (m: Map<_, _>) e -> m.Add(e.Index, e.Term))
                (raft.Terms |> Map.filter (fun i _ -> i < first || count = 0))

        return
            Save(state, entries),
            { raft with
                Term = newTerm
                Vote = vote
                Commit = commit
                Terms = terms
                LastIndex = last
            }
    }

let private step (raft: Raft) =
    let snapshot =
        if raft.Commit = 0UL then
            []
        else
            let lastSnap = raft.Snapshots |> List.fold (fun m s -> max m s.Index) 0UL

            [
                1,
                gen {
                    let! index = Gen.choose (int lastSnap, int raft.Commit) |> Gen.map uint64

                    let s: Wal.Model.Snapshot =
                        {
                            Index = index
                            Term = raft.Terms |> Map.tryFind index |> Option.defaultValue 0UL
                        }

                    return
                        SaveSnapshot s,
                        { raft with
                            Snapshots = s :: raft.Snapshots
                        }
                }
            ]

    let reopen =
        gen {
            let! at = Gen.elements (Snapshot.zero :: raft.Snapshots)
            return Reopen at, raft
        }

    Gen.frequency (
        [
            10, save raft
            1, Gen.constant (Save(HardState.empty, []), raft)
            1, Gen.constant (Sync, raft)
            1,
            Gen.choose (0, int raft.LastIndex + 1)
            |> Gen.map (fun i -> ReleaseLockTo(uint64 i), raft)
            2, reopen
        ]
        @ snapshot
    )

let private operations =
    Gen.sized (fun size ->
        let rec go n raft acc =
            if n = 0 then
                Gen.constant (List.rev acc)
            else
                step raft |> Gen.bind (fun (op, raft) -> go (n - 1) raft (op :: acc))

        let start =
            {
                Term = 1UL
                Vote = 0UL
                Commit = 0UL
                Terms = Map.empty
                LastIndex = 0UL
                Snapshots = []
            }

        go (min size 40) start [ Create "node-1"B ])

/// A generated run: the segment size and the operations.
type Scenario =
    {
        SegmentSize: int64
        Operations: Operation list
    }

    override this.ToString() =
        let lines =
            this.Operations |> List.mapi (fun i op -> $"  {i, 3}: {Operation.describe op}")

        String.Join("\n", $"segment size {this.SegmentSize}" :: lines)

type ScenarioGen =
    /// Shrinks by dropping one operation (never the Create) at a time. Both the engine and
    /// the model define every sequence, so a shrunk one is still a fair comparison.
    static member Shrink(scenario: Scenario) =
        match scenario.Operations with
        | create :: rest ->
            seq {
                for i in 0 .. rest.Length - 1 do
                    yield
                        { scenario with
                            Operations = create :: List.removeAt i rest
                        }
            }
        | [] -> Seq.empty

    static member Scenario() =
        let generator =
            gen {
                let! segmentSize = Gen.elements [ 512L; 1024L; 4096L; 64000L ]
                let! ops = operations

                return
                    {
                        SegmentSize = segmentSize
                        Operations = ops
                    }
            }

        Arb.fromGenShrink (generator, ScenarioGen.Shrink)

/// Runs a scenario on the engine and the model; returns the first disagreement, if any.
let runOn (fs: MemoryFileSystem.MemoryFileSystem, options: WalOptions) (scenario: Scenario) : string option =
    let dir = "/data/wal"
    let mutable wal: WriteAheadLog = null
    let mutable log = Log.empty
    let mutable divergence = None

    let compare (at: Wal.Model.Snapshot) where =
        let engine = readOutcome wal
        let model = Log.readAll at log

        if divergence.IsNone && engine <> Model model then
            let shown =
                match engine with
                | Model outcome -> ReadOutcome.describe outcome
                | OtherError kind -> $"{kind}"

            divergence <- Some $"{where}:\n  engine: {shown}\n  model:  {ReadOutcome.describe model}"

    for op in scenario.Operations do
        if divergence.IsNone then
            match op with
            | Create metadata -> wal <- WriteAheadLog.Create(dir, ReadOnlyMemory metadata, options)
            | Save(state, entries) -> wal.Save(toHardState state, entries |> List.map toEntry |> Array.ofList)
            | SaveSnapshot s -> wal.SaveSnapshot(toSnapshot s)
            | Sync -> wal.Sync()
            | ReleaseLockTo i -> wal.ReleaseLockTo i
            | Reopen at ->
                wal.Dispose()
                wal <- WriteAheadLog.Open(dir, toSnapshot at, options)
                compare at (Operation.describe op)

            log <- Log.apply log op

    if divergence.IsNone then
        wal.Dispose()

        for at in
            Snapshot.zero
            :: (log.Records
                |> List.choose (function
                    | SnapshotRecord s -> Some s
                    | _ -> None)) do
            wal <- WriteAheadLog.OpenForRead(dir, toSnapshot at, options)
            compare at $"final read at {at.Index}/{at.Term}"
            wal.Dispose()

    divergence

let run (scenario: Scenario) =
    runOn (memoryOptions scenario.SegmentSize) scenario

[<Property(Arbitrary = [| typeof<ScenarioGen> |], MaxTest = 200)>]
let ``the engine's ReadAll equals the model's for any raft-like sequence`` (scenario: Scenario) =
    let outcome = run scenario
    outcome.IsNone |> Prop.label (defaultArg outcome "")

[<Property(Arbitrary = [| typeof<ScenarioGen> |], MaxTest = 50)>]
let ``with 512-byte segments the engine cuts, names segments in sequence, and the model still agrees``
    (scenario: Scenario)
    =
    let scenario = { scenario with SegmentSize = 512L }
    let fs, options = memoryOptions 512L
    let outcome = runOn (fs, options) scenario
    let segments = fs.List "/data/wal" |> List.filter (fun n -> n.EndsWith ".wal")

    let written =
        scenario.Operations
        |> List.sumBy (function
            | Save(_, es) -> es.Length
            | _ -> 0)

    let sequences =
        segments |> List.map (fun n -> Convert.ToUInt64(n.Substring(0, 16), 16))

    (outcome.IsNone
     && sequences = [ 0UL .. uint64 segments.Length - 1UL ]
     && (written < 10 || segments.Length > 1))
    |> Prop.label $"{outcome}; segments {segments}"
