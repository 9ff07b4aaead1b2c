/// Crash-state exploration, as CrashMonkey does it: run a sequence once, capture the disk after
/// every mutating call, and for each captured state recover from many crash images of it,
/// judging every recovery against the model. This is the repository's main job.
module Wal.Simulation.Explorer

open System
open System.Diagnostics
open System.Threading
open FsCheck
open FsCheck.FSharp
open Wal.Model
open Wal.Oracle.Scenarios

/// A crash state the engine recovered from in a way the model does not allow.
type Divergence =
    {
        Scenario: Scenario
        /// The power went after this many mutating calls.
        Mutation: int
        Image: CrashImage
        Message: string
    }

    override this.ToString() =
        // A trace (wal replay runs it), the power cut and the verdict as comments after it.
        let comment (text: string) =
            text.Split('\n') |> Array.map (fun l -> "# " + l) |> String.concat "\n"

        let cut =
            comment $"power cut after mutating call {this.Mutation}, image {this.Image}"

        $"{this.Scenario}{cut}\n{comment this.Message}"

/// How much to explore per captured state.
type Bounds =
    {
        /// Crash images enumerated in order (each namespace prefix, each file's change prefix and
        /// torn sectors), at most this many per state.
        Enumerated: int
        /// Random sector reorderings per file, added to the enumeration.
        Reorderings: int
        /// Images whose lost sectors read as garbage, per state.
        Garbage: int
    }

let defaultBounds =
    {
        Enumerated = 24
        Reorderings = 1
        Garbage = 2
    }

/// Every crash state of a scenario: the disk after each mutating call and what the model allows then.
let capture (scenario: Scenario) =
    let states = ResizeArray<DiskState * DurableLog>()

    let result =
        Harness.run
            { Harness.defaultConfig with
                SegmentSize = scenario.SegmentSize
                OnMutation = Some(fun state log -> states.Add(state, log))
            }
            scenario.Steps

    List.ofSeq states, result

/// The crash images explored for one state.
let imagesOf (bounds: Bounds) (state: DiskState) (seed: int) =
    Seq.append
        (CrashImage.enumerate state bounds.Reorderings bounds.Enumerated seed)
        (Seq.init bounds.Garbage (fun i -> CrashImage.random state true (seed + i)))

/// Recovers from one crash image and judges the outcome; then, as recovery must go on, saves
/// one more entry, closes, reopens and judges that read too. None when the model allows both.
let judgeImage
    (segmentSize: int64)
    (state: DiskState)
    (log: DurableLog)
    (allowed: ReadOutcome list)
    (image: CrashImage)
    =
    let fs = SimulatedFileSystem(CrashImage.crash state image)
    let options = Harness.optionsFor fs segmentSize
    let observed, opened = Harness.recover options Snapshot.zero

    let garbage =
        match image.Lost with
        | Garbage _ -> true
        | OldContents -> false

    let dispose (w: Wal.WriteAheadLog) =
        try
            w.Dispose()
        with _ ->
            ()

    match Harness.judge allowed garbage observed, observed, opened with
    | Some message, _, _ ->
        opened |> Option.iter dispose
        Some message
    | None, Convert.Model outcome, Some wal ->
        match Durability.recovered Snapshot.zero outcome log with
        | None ->
            dispose wal
            Some "no candidate explains the read"
        | Some recovered ->
            let last =
                match outcome with
                | Read c
                | NotFound c -> c.Entries |> List.tryLast |> Option.map _.Index |> Option.defaultValue 0UL
                | _ -> 0UL

            let term = 1000UL

            let entry: Entry =
                {
                    Term = term
                    Index = last + 1UL
                    Kind = 0
                    Data = Array.create 700 0x5Auy
                }

            let save =
                Operation.Save(
                    {
                        Term = term
                        Vote = 1UL
                        Commit = last
                    },
                    [ entry ]
                )

            try
                try
                    wal.Save(
                        Wal.FSharp.ModelConvert.toHardState
                            {
                                Term = term
                                Vote = 1UL
                                Commit = last
                            },
                        [| Wal.FSharp.ModelConvert.toEntry entry |]
                    )
                finally
                    wal.Dispose()

                let after = Durability.acknowledged recovered save |> Durability.synced
                let reread, reopened = Harness.recoverWith false options Snapshot.zero
                reopened |> Option.iter dispose

                Harness.judge (Durability.allowedAfterCrash Snapshot.zero after) false reread
                |> Option.map (fun m -> $"after recovering, saving entry {entry.Index} and reopening: {m}")
            with :? Wal.WalException as ex ->
                Some $"after recovering, saving entry {entry.Index} failed: {ex.Kind} {ex.Message}"
    | None, _, opened ->
        opened |> Option.iter dispose
        None

/// Explores every captured crash state of a scenario within the bounds; returns how many states
/// were judged and the first divergence.
let exploreScenario (bounds: Bounds) (seed: int) (scenario: Scenario) : int * Divergence option =
    let states, clean = capture scenario

    match clean.Divergence with
    | Some message ->
        1,
        Some
            {
                Scenario = scenario
                Mutation = 0
                Image =
                    {
                        NamespaceKept = 0
                        Files = Map.empty
                        Lost = OldContents
                    }
                Message = $"without a crash: {message}"
            }
    | None ->
        let mutable judged = 0
        let mutable found = None

        states
        |> List.iteri (fun i (state, log) ->
            if found.IsNone then
                let allowed = Durability.allowedAfterCrash Snapshot.zero log

                for image in imagesOf bounds state (seed + i) do
                    if found.IsNone then
                        judged <- judged + 1

                        match judgeImage scenario.SegmentSize state log allowed image with
                        | Some message ->
                            found <-
                                Some
                                    {
                                        Scenario = scenario
                                        Mutation = i + 1
                                        Image = image
                                        Message = message
                                    }
                        | None -> ())

        judged, found

/// Shrinks a divergent scenario by dropping operations while some crash state still diverges.
let shrinkDivergence (bounds: Bounds) (seed: int) (found: Divergence) =
    let rec go (current: Divergence) =
        let smaller =
            shrink current.Scenario
            |> Seq.tryPick (fun candidate -> exploreScenario bounds seed candidate |> snd)

        match smaller with
        | Some d -> go d
        | None -> current

    go found

/// What an exploration did.
type Summary =
    {
        Sequences: int
        CrashStates: int
        Divergences: int
        Elapsed: TimeSpan
        Seed: int
        First: Divergence option
    }

    member this.StatesPerSecond =
        float this.CrashStates / max this.Elapsed.TotalSeconds 1e-9

/// Explores crash states of generated scenarios until `budget` states have been judged or a
/// divergence is found, on `threads` threads; scenario i is generated from `seed + i`, so a run
/// is reproducible by its seed.
let explore (budget: int) (seed: int) (threads: int) (bounds: Bounds) (progress: int -> int -> unit) : Summary =
    let clock = Stopwatch.StartNew()
    let mutable states = 0
    let mutable sequences = 0
    let mutable next = -1
    let mutable first: Divergence option = None
    let gate = obj ()
    let generator = scenario false

    let worker () =
        while Volatile.Read(&states) < budget && (lock gate (fun () -> first.IsNone)) do
            let i = Interlocked.Increment(&next)
            let scenarioSeed = seed + i
            let rnd = Rnd(uint64 scenarioSeed, 0x9E3779B97F4A7C15UL)
            let scenario = (Gen.sampleWithSeed rnd 30 1 generator)[0]
            let judged, found = exploreScenario bounds scenarioSeed scenario
            let total = Interlocked.Add(&states, judged)
            let count = Interlocked.Increment(&sequences)

            match found with
            | Some d ->
                lock gate (fun () ->
                    if first.IsNone then
                        first <- Some d)
            | None -> ()

            if count % 50 = 0 then
                progress count total

    let workers = Array.init threads (fun _ -> Thread(worker, 16 * 1024 * 1024))

    for w in workers do
        w.Start()

    for w in workers do
        w.Join()

    clock.Stop()

    {
        Sequences = sequences
        CrashStates = states
        Divergences = (if first.IsSome then 1 else 0)
        Elapsed = clock.Elapsed
        Seed = seed
        First = first |> Option.map (shrinkDivergence bounds seed)
    }
