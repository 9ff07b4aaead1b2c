/// The vocabulary of a run, shared by traces, scenarios, harnesses and counterexamples: what a
/// client calls on a log (`Operation`), and what befalls the log without a client asking
/// (`HarnessEvent`, a harness's doing). A step of a run is one or the other.
namespace Wal.Model

/// What a client calls on a log.
type Operation =
    /// Creates the log with this metadata and leaves it open for appending.
    | Create of metadata: byte[]
    /// Appends entries then the hard state (etcd's Save).
    | Save of HardState * Entry list
    /// Records a snapshot marker.
    | SaveSnapshot of Snapshot
    /// Makes everything written durable.
    | Sync
    /// etcd's ReleaseLockTo.
    | ReleaseLockTo of index: uint64
    /// Closes the log cleanly: everything written is durable.
    | Close
    /// Opens the log at the snapshot for appending and reads it all (ReadAll). After a power
    /// loss this is recovery as etcd's server does it: on a torn tail, Repair once, Open and
    /// ReadAll again.
    | Open of Snapshot
    /// A second, read-only reader opens at the snapshot and reads, beside the writer.
    | OpenForRead of Snapshot
    /// Repair of the closed log (which finds nothing to cut on a cleanly closed one).
    | Repair

/// What befalls a log without a client asking: a harness makes it happen.
type HarnessEvent =
    /// Power loss now; the log is closed as after a reboot, and the next Open recovers it.
    /// The number, when given, chooses what survives (a crash image) in a simulated run.
    | PowerLoss of image: int option

/// One step of a run: a client's call, or an event.
type Step =
    /// A client calls an operation.
    | Do of Operation
    /// An event befalls the log.
    | Happen of HarnessEvent

[<RequireQualifiedAccess>]
module Operation =
    let private entry (e: Entry) =
        let kind = if e.Kind = 0 then "" else $" kind={e.Kind}"
        $"{e.Term}/{e.Index}{kind} ({e.Data.Length} B)"

    /// One line per operation, for counterexamples.
    let describe (operation: Operation) =
        match operation with
        | Create m -> $"create metadata={m.Length} B"
        | Save(s, es) ->
            let entries = es |> List.map entry |> String.concat ", "
            $"save term={s.Term} vote={s.Vote} commit={s.Commit} [{entries}]"
        | SaveSnapshot s -> $"snapshot index={s.Index} term={s.Term}"
        | Sync -> "sync"
        | ReleaseLockTo i -> $"release-lock-to {i}"
        | Close -> "close"
        | Open s -> $"open at index={s.Index} term={s.Term}"
        | OpenForRead s -> $"open-for-read at index={s.Index} term={s.Term}"
        | Repair -> "repair"

[<RequireQualifiedAccess>]
module HarnessEvent =
    /// One line per event, for counterexamples.
    let describe (event: HarnessEvent) =
        match event with
        | PowerLoss None -> "crash"
        | PowerLoss(Some image) -> $"crash image={image}"

[<RequireQualifiedAccess>]
module Step =
    /// One line per step, for counterexamples.
    let describe (step: Step) =
        match step with
        | Do operation -> Operation.describe operation
        | Happen event -> HarnessEvent.describe event

    /// The operation a step calls, if it is a client's call.
    let operation (step: Step) =
        match step with
        | Do operation -> Some operation
        | Happen _ -> None
