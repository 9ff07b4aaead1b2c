/// RaftLog's readers on other threads, during appends, overwrites and compactions: every read
/// must be a slice of a state the model went through.
module Wal.Properties.RaftLogReaders

open System
open System.Threading
open Expecto
open FsCheck
open FsCheck.FSharp
open Wal
open Wal.Model
open Wal.Simulation
open Wal.FSharp
open Wal.Oracle.Scenarios
open Wal.Properties.Support
open Wal.Properties.RaftLogRun

/// One state the log went through, as the model has it: the entries from the first index on.
type private State =
    {
        First: uint64
        Entries: Wal.Model.Entry[]
    }

/// A read on another thread: from `Lo`, what came back.
type private Seen =
    {
        Lo: uint64
        Got: Wal.Model.Entry list
    }

let private explains (states: State list) (seen: Seen) =
    states
    |> List.exists (fun state ->
        seen.Lo >= state.First
        && (let skip = int (seen.Lo - state.First)
            let n = seen.Got.Length

            skip + n <= state.Entries.Length
            && List.ofArray state.Entries[skip .. skip + n - 1] = seen.Got))

/// Runs `scenario` on a log in `dir` opened with `options` (the simulated disk, or the real one
/// with mapped segments), three reader threads racing it; the property that every read is a
/// slice of a state the model went through.
let readersSeeModelStates (dir: string) (options: WalOptions) (scenario: Scenario) (seed: int) =
    let mutable model = Log.empty
    let mutable compacted = 0UL
    // Where raft's log starts: zero, or the last snapshot installed past it.
    let mutable at = Snapshot.zero
    let states = Collections.Concurrent.ConcurrentQueue<State>()

    let record () =
        match Log.readAll at model with
        | Read c ->
            states.Enqueue
                {
                    First = compacted + 1UL
                    Entries = c.Entries |> List.filter (fun e -> e.Index > compacted) |> Array.ofList
                }
        | _ -> ()

    let mutable log: RaftLog = null
    let mutable finished = false
    let seen = Collections.Concurrent.ConcurrentBag<Seen>()
    let failures = Collections.Concurrent.ConcurrentBag<string>()

    let reader (n: int) () =
        let random = Random(seed + n)

        while not (Volatile.Read &finished) do
            let l = Volatile.Read &log

            if not (isNull l) then
                try
                    let first, last = l.FirstIndex, l.LastIndex

                    if last >= first then
                        let lo = first + uint64 (random.NextInt64(int64 (last - first + 1UL)))
                        let hi = lo + 1UL + uint64 (random.NextInt64(int64 (last - lo + 1UL)))

                        let limit =
                            if random.Next 3 = 0 then
                                uint64 (random.Next 4000)
                            else
                                UInt64.MaxValue

                        let got = l.GetEntries(lo, hi, limit) |> Seq.map ModelConvert.ofEntry |> List.ofSeq

                        if got.IsEmpty then
                            failures.Add $"GetEntries({lo}, {hi}) gave nothing"

                        seen.Add { Lo = lo; Got = got }
                        let e = l.GetEntry lo

                        seen.Add
                            {
                                Lo = lo
                                Got = [ ModelConvert.ofEntry e ]
                            }

                        if l.Term lo <> e.Term && l.FirstIndex <= lo then
                            () // a later overwrite may change a term; the read itself was checked above
                with :? WalException as ex when ex.Kind = WalErrorKind.Compacted || ex.Kind = WalErrorKind.Unavailable ->
                    // Raced a compaction or an overwrite between asking for the range and reading it.
                    ()

    let threads = [ for n in 1..3 -> Thread(reader n) ]
    threads |> List.iter (fun t -> t.Start())

    try
        for step in scenario.Steps do
            match step with
            | Do(Create metadata as op) ->
                let l = RaftLog.Create(dir, ReadOnlyMemory metadata, options)
                model <- Log.apply model op
                record ()
                Volatile.Write(&log, l)
            | Do(Save(state, entries) as op) when not (isNull log) ->
                let fits =
                    match entries with
                    | e :: _ -> e.Index <= log.LastIndex + 1UL && e.Index > compacted
                    | [] -> true

                if fits then
                    log.Append(entries |> List.map ModelConvert.toEntry |> Array.ofList, ModelConvert.toHardState state)
                    model <- Log.apply model op
                    record ()
            | Do(SaveSnapshot s as op) when not (isNull log) ->
                // Past the last index, a follower's install: the log starts after it.
                let installs = s.Index > log.LastIndex
                log.SaveSnapshot(ModelConvert.toSnapshot s)
                model <- Log.apply model op

                if installs then
                    at <- s
                    compacted <- s.Index
                    record ()
            | Do(ReleaseLockTo i) when not (isNull log) ->
                let target = min i (min log.Snapshot.Index log.LastIndex)

                if target > compacted then
                    compacted <- target
                    record ()
                    log.CompactTo target
            | _ -> ()
    finally
        Volatile.Write(&finished, true)
        threads |> List.iter (fun t -> t.Join())

        if not (isNull log) then
            log.Dispose()

    let states = List.ofSeq states

    let unexplained =
        seen |> Seq.filter (fun s -> not (explains states s)) |> Seq.tryHead

    (failures.IsEmpty |> Prop.label (String.concat "; " failures))
    .&. (unexplained.IsNone
         |> Prop.label (
             match unexplained with
             | Some s -> $"a reader saw {s.Got.Length} entries from {s.Lo} that no state of the model holds"
             | None -> ""
         ))
    |> Prop.collect (seen.Count > 0)

let ``readers on other threads, during appends, overwrites and compactions, each see a state the model went through``
    (scenario: Scenario)
    (seed: int)
    =
    let _, options = memoryOptions scenario.SegmentSize
    readersSeeModelStates "/data/wal" options scenario seed
