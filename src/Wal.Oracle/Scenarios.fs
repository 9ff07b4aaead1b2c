/// Generators of raft-like runs (steps of Wal.Model's vocabulary), shared by the oracle, the
/// property suites and the crash-state explorer, with a shrinker that drops whole moves.
module Wal.Oracle.Scenarios

open System
open FsCheck
open FsCheck.FSharp
open Wal.Model
open Wal.Oracle

/// What the generator knows of the raft log so far, so that it only asks for what raft does
/// and keeps raft's invariants (Wal.Model.Invariants): overwrites only above the commit index
/// and the last snapshot, snapshots only of committed entries, one vote per term, entries with
/// or without a hard state.
type Raft =
    {
        Term: uint64
        Vote: uint64
        Commit: uint64
        Terms: Map<uint64, uint64>
        LastIndex: uint64
        /// The highest index ever saved, stale entries above LastIndex included.
        Written: uint64
        /// Reopened since the last Save of a hard state: etcd's ReadAll does not hand the hard
        /// state it read to the writer, so a cut before the next such Save starts a segment
        /// without one, and a read from that segment on loses it (docs/format.md#a-segment-
        /// without-the-hard-state). For an implementation that keeps that quirk (without
        /// `Supports.BareAfterReopen`) the generators save a hard state first.
        Reopened: bool
        Snapshots: Wal.Model.Snapshot list
        /// The last snapshot installed past the log's entries (zero if none): raft opens at it or
        /// later, as a read from below it finds a gap before the entries after it (SliceOutOfRange).
        Installed: Wal.Model.Snapshot
    }

/// The operations an implementation supports beyond create, save, close and open (a driver's
/// `supports`, docs/driver-protocol.md); the generators ask only for these.
type Supports =
    {
        /// A Save whose first entry index is at or below the last index replaces the suffix.
        Overwrite: bool
        /// Snapshot markers (SaveSnapshot, and opens at a snapshot).
        Snapshot: bool
        /// Snapshots past the last entry, as a follower installs its leader's: SaveSnapshot, then
        /// a Save of the hard state committing up to it, and entries from the index after it.
        Install: bool
        /// ReleaseLockTo.
        Release: bool
        /// Sync.
        Sync: bool
        /// Saves of entries alone (an empty hard state) right after a reopen, before any Save of
        /// a hard state: a cut they make must still leave the hard state readable from the new
        /// segment on, which etcd 3.4 does not (docs/format.md#a-segment-without-the-hard-state).
        BareAfterReopen: bool
    }

[<RequireQualifiedAccess>]
module Supports =
    /// Everything: what the engine supports and what the generators ask for by default.
    let all =
        {
            Overwrite = true
            Snapshot = true
            Install = true
            Release = true
            Sync = true
            BareAfterReopen = true
        }

    /// What etcd 3.4's wal package does as this engine does, byte for byte: everything but
    /// installs (it names the next segment after the last entry, not the snapshot) and bare
    /// Saves after a reopen (it forgets the hard state it read).
    let etcdBytes =
        { all with
            Install = false
            BareAfterReopen = false
        }

let payload =
    Gen.frequency [ 6, Gen.choose (0, 64); 3, Gen.choose (65, 1500); 1, Gen.choose (1501, 9000) ]
    |> Gen.bind (fun n -> Gen.arrayOfLength n (Gen.choose (0, 255) |> Gen.map byte))

let private saveSupporting (supports: Supports) (raft: Raft) =
    gen {
        let! newTerm =
            Gen.frequency [ 4, Gen.constant raft.Term; 1, Gen.constant (raft.Term + 1UL) ]

        // Raft casts at most one vote per term: the vote changes only with the term, or from none.
        let! vote =
            if newTerm > raft.Term || raft.Vote = 0UL then
                Gen.frequency [ 4, Gen.constant raft.Vote; 1, Gen.choose (1, 5) |> Gen.map uint64 ]
            else
                Gen.constant raft.Vote

        let floor =
            max raft.Commit (raft.Snapshots |> List.fold (fun m s -> max m s.Index) 0UL)

        let! first =
            if supports.Overwrite then
                Gen.choose (int floor + 1, int raft.LastIndex + 1) |> Gen.map uint64
            else
                Gen.constant (raft.LastIndex + 1UL)

        let! count = Gen.frequency [ 2, Gen.constant 0; 5, Gen.choose (1, 4) ]

        // Raft often saves entries with an empty hard state (nothing but the log changed); they
        // carry the term already saved.
        let! bare =
            if count > 0 && raft.Term > 0UL && (supports.BareAfterReopen || not raft.Reopened) then
                Gen.frequency [ 3, Gen.constant false; 1, Gen.constant true ]
            else
                Gen.constant false

        let newTerm = if bare then raft.Term else newTerm
        let vote = if bare then raft.Vote else vote
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

        let commit = if bare then raft.Commit else max commit raft.Commit

        let state: Wal.Model.HardState =
            if bare then
                HardState.empty
            else
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
            [ Do(Save(state, entries)) ],
            { raft with
                Term = newTerm
                Vote = vote
                Commit = commit
                Terms = terms
                LastIndex = last
                Written = max raft.Written last
                Reopened = raft.Reopened && state = HardState.empty
            }
    }

/// A Save raft would make next, and what the generator knows after it.
let save (raft: Raft) = saveSupporting Supports.all raft

/// One move of a raft-like client asking only for what `supports` lists.
let stepSupporting (supports: Supports) (crashes: bool) (raft: Raft) =
    let snapshot =
        if raft.Commit = 0UL || not supports.Snapshot then
            []
        else
            let lastSnap = raft.Snapshots |> List.fold (fun m s -> max m s.Index) 0UL

            [
                1,
                gen {
                    // etcd's ReadAll at snapshot s skips entries at or below s, so an overwrite at
                    // or below s cannot truncate stale entries above it. When s is the last index
                    // and stale entries lie above it, what a read returns depends on which segment
                    // it starts from (docs/format.md#a-snapshot-at-the-last-index): the generators
                    // leave that quirk to its own test.
                    let top =
                        if raft.Written > raft.LastIndex && raft.Commit = raft.LastIndex then
                            raft.Commit - 1UL
                        else
                            raft.Commit

                    let! index = Gen.choose (int lastSnap, int (max lastSnap top)) |> Gen.map uint64

                    let s: Wal.Model.Snapshot =
                        {
                            Index = index
                            Term = raft.Terms |> Map.tryFind index |> Option.defaultValue 0UL
                        }

                    return
                        [ Do(SaveSnapshot s) ],
                        { raft with
                            Snapshots = s :: raft.Snapshots
                        }
                }
            ]

    // A follower behind its leader installs the leader's snapshot: past every entry it ever
    // wrote (so no stale entry lies above it), at a term no entry of its log exceeds; raft then
    // saves the hard state committing up to it, and its log goes on from the index after it.
    let install =
        if not (supports.Snapshot && supports.Install) then
            []
        else
            [
                1,
                gen {
                    let! ahead = Gen.choose (1, 6) |> Gen.map uint64

                    let! newTerm =
                        Gen.frequency [ 2, Gen.constant raft.Term; 1, Gen.constant (raft.Term + 1UL) ]

                    let vote = if newTerm = raft.Term then raft.Vote else 0UL

                    let s: Wal.Model.Snapshot =
                        {
                            Index = raft.Written + ahead
                            Term = newTerm
                        }

                    let state: Wal.Model.HardState =
                        {
                            Term = newTerm
                            Vote = vote
                            Commit = s.Index
                        }

                    return
                        [ Do(SaveSnapshot s); Do(Save(state, [])) ],
                        { raft with
                            Term = newTerm
                            Vote = vote
                            Commit = s.Index
                            Terms = raft.Terms.Add(s.Index, s.Term)
                            LastIndex = s.Index
                            Written = s.Index
                            Reopened = false
                            Snapshots = s :: raft.Snapshots
                            Installed = s
                        }
                }
            ]

    let openable =
        Snapshot.zero :: raft.Snapshots
        |> List.filter (fun s -> s.Index >= raft.Installed.Index)

    let reopen =
        gen {
            let! at = Gen.elements openable
            return [ Do Close; Do(Open at) ], { raft with Reopened = true }
        }

    let reader =
        gen {
            let! at = Gen.elements openable
            return [ Do(OpenForRead at) ], raft
        }

    let crash =
        gen {
            let! image = Gen.choose (0, Int32.MaxValue - 1)
            let! at = Gen.elements openable
            return [ Happen(PowerLoss(Some image)); Do(Open at) ], { raft with Reopened = true }
        }

    Gen.frequency (
        [
            10, saveSupporting supports raft
            1, Gen.constant ([ Do(Save(HardState.empty, [])) ], raft)
        ]
        @ (if supports.Sync then
               [ 1, Gen.constant ([ Do Sync ], raft) ]
           else
               [])
        @ (if supports.Release then
               [
                   1,
                   Gen.choose (0, int raft.LastIndex + 1)
                   |> Gen.map (fun i -> [ Do(ReleaseLockTo(uint64 i)) ], raft)
               ]
           else
               [])
        @ [
            2, reopen
            1, reader
            // Repair of a cleanly closed log, which finds nothing to cut, then a read from the start.
            1, Gen.constant ([ Do Close; Do Repair; Do(Open raft.Installed) ], { raft with Reopened = true })
        ]
        @ snapshot
        @ install
        @ (if crashes then [ 2, crash ] else [])
    )

/// Metadata from empty to several pages (a cut repeats it at the head of every segment).
let metadata =
    Gen.frequency
        [
            4, Gen.constant "node-1"B
            1, Gen.constant [||]
            1,
            Gen.choose (1, 9000)
            |> Gen.bind (fun n -> Gen.arrayOfLength n (Gen.choose (1, 255) |> Gen.map byte))
        ]

/// One move of a raft-like client: the steps it takes (a reopen is a close and an open; a
/// crash, a power loss and the recovering open), and what the generator knows after it.
let step (crashes: bool) (raft: Raft) =
    stepSupporting Supports.all crashes raft

/// A run asking only for what `supports` lists: Create, then up to 40 moves (power losses
/// among them when `crashes`).
let stepsSupporting (supports: Supports) (crashes: bool) =
    Gen.sized (fun size ->
        let rec go n raft acc =
            if n = 0 then
                Gen.constant (List.rev acc |> List.concat)
            else
                stepSupporting supports crashes raft
                |> Gen.bind (fun (move, raft) -> go (n - 1) raft (move :: acc))

        let start =
            {
                Term = 1UL
                Vote = 0UL
                Commit = 0UL
                Terms = Map.empty
                LastIndex = 0UL
                Written = 0UL
                Reopened = false
                Snapshots = []
                Installed = Snapshot.zero
            }

        metadata |> Gen.bind (fun m -> go (min size 40) start [ [ Do(Create m) ] ]))

/// A run: Create, then up to 40 moves (power losses among them when `crashes`).
let steps (crashes: bool) = stepsSupporting Supports.all crashes

/// A run cut into its moves: an open, and a repair, belong with the close or the power loss
/// before them. Shrinking drops whole moves, so a shrunk run is still one a client could make.
let moves (steps: Step list) : Step list list =
    let joinsPrevious step =
        match step with
        | Do(Open _)
        | Do Repair -> true
        | _ -> false

    steps
    |> List.fold
        (fun (acc: Step list list) step ->
            match acc with
            | current :: earlier when joinsPrevious step -> (step :: current) :: earlier
            | _ -> [ step ] :: acc)
        []
    |> List.map List.rev
    |> List.rev

/// A generated run: the segment size and the steps.
type Scenario =
    {
        SegmentSize: int64
        Steps: Step list
    }

    /// The run in the trace language (Wal.Oracle.Trace), so `wal replay` can rerun it.
    override this.ToString() =
        $"# segment size {this.SegmentSize}\n" + Trace.print this.Steps

/// Whether `snapshot`, saved after `records`, was installed from a leader: past every entry.
let private installs (records: Record list) (snapshot: Snapshot) =
    records
    |> List.forall (fun r ->
        match r with
        | EntryRecord e -> e.Index < snapshot.Index
        | _ -> true)
    && snapshot.Index > 0UL

/// Whether `steps` are a run raft could make (what a crash took aside, as the generators
/// assume): every Save keeps raft's invariants over the records before it and overwrites
/// nothing at or below a saved snapshot, every snapshot is of committed entries (and not at a
/// last index with stale entries above it), and every open
/// at a snapshot opens at one saved before. A shrunk run must still be one.
let keepsInvariants (steps: Step list) =
    let rec go (records: Record list) (snapshots: Snapshot list) (floor: uint64) (steps: Step list) =
        match steps with
        | [] -> true
        | Do(Create m) :: rest -> go (Stream.create m) [] 0UL rest
        // Raft opens at its last installed snapshot or later.
        | Do(Open at | OpenForRead at) :: _ when at.Index < floor -> false
        | Do(Save(state, entries) as op) :: rest ->
            let lastSnapshot = snapshots |> List.fold (fun m s -> max m s.Index) 0UL

            (Invariants.saveViolation records state entries).IsNone
            && (entries |> List.forall (fun e -> e.Index > lastSnapshot))
            && go (records @ Stream.recordsOf op) snapshots floor rest
        | Do(SaveSnapshot s as op) :: rest ->
            // Raft snapshots committed entries only.
            let commit =
                records
                |> List.fold
                    (fun c r ->
                        match r with
                        | State st -> st.Commit
                        | _ -> c)
                    0UL

            // ... and never at the last index while stale entries lie above it (see `stepSupporting`).
            let last, highest =
                records
                |> List.fold
                    (fun (last, highest) r ->
                        match r with
                        | EntryRecord e -> e.Index, max highest e.Index
                        | _ -> last, highest)
                    (0UL, 0UL)

            // ... or past every entry written, installed from a leader (see `stepSupporting`).
            (s.Index <= commit || s.Index > highest)
            && not (s.Index = last && highest > last && s.Index > 0UL)
            && go
                (records @ Stream.recordsOf op)
                (s :: snapshots)
                (if installs records s then max floor s.Index else floor)
                rest
        | Do(Open at | OpenForRead at) :: _ when at <> Snapshot.zero && not (List.contains at snapshots) -> false
        | Do op :: rest -> go (records @ Stream.recordsOf op) snapshots floor rest
        | Happen _ :: rest -> go records snapshots floor rest

    go [] [] 0UL steps

/// Shrinks by dropping one move (never the Create) at a time, keeping raft's invariants. Both the
/// engine and the model define every run, so a shrunk one is still a fair comparison.
let shrink (scenario: Scenario) =
    match moves scenario.Steps with
    | create :: rest ->
        seq {
            for i in 0 .. rest.Length - 1 do
                let steps = create @ List.concat (List.removeAt i rest)

                if keepsInvariants steps then
                    yield { scenario with Steps = steps }
        }
    | [] -> Seq.empty

/// Scenarios asking only for what `supports` lists, with segments from 512 bytes (a cut every
/// Save or two) to 64 kB.
let scenarioSupporting (supports: Supports) (crashes: bool) =
    gen {
        let! segmentSize = Gen.elements [ 512L; 1024L; 4096L; 64000L ]
        let! steps = stepsSupporting supports crashes

        return
            {
                SegmentSize = segmentSize
                Steps = steps
            }
    }

/// Scenarios with segments from 512 bytes (a cut every Save or two) to 64 kB.
let scenario (crashes: bool) = scenarioSupporting Supports.all crashes

/// For [<Property(Arbitrary = ...)>]: scenarios without power cuts.
type Clean =
    static member Scenario() =
        Arb.fromGenShrink (scenario false, shrink)

/// For [<Property(Arbitrary = ...)>]: scenarios with power cuts between operations.
type WithCrashes =
    static member Scenario() =
        Arb.fromGenShrink (scenario true, shrink)

/// For [<Property(Arbitrary = ...)>]: scenarios without power cuts, for comparing files with
/// etcd 3.4's, leaving out what etcd writes otherwise (`Supports.etcdBytes`): installs, whose
/// segments it names differently (docs/format.md#segment-names-after-a-snapshot), and bare Saves
/// right after a reopen, whose cuts it starts without the hard state.
type CleanWithoutInstalls =
    static member Scenario() =
        Arb.fromGenShrink (scenarioSupporting Supports.etcdBytes false, shrink)
