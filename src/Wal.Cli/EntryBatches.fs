/// A survey's entries read on a thread of their own, in batches, while the caller writes the
/// batches read before: on two cores, reading a large log and writing it out overlap. At most a
/// few batches of about 1 MiB exist at a time, reused, so memory stays bounded whatever the
/// log's size; the entries come in ReadAll's order, and an error of the read comes after the
/// entries read before it, as it would from `LogSurvey.VisitEntries` itself.
module Wal.Cli.EntryBatches

open System
open System.Collections.Concurrent
open System.Runtime.ExceptionServices
open System.Threading
open Wal

/// Entries copied out of the reader's buffer: their fields, and their payloads end to end.
[<Sealed>]
type Batch() =
    let mutable count = 0
    let terms = Array.zeroCreate<uint64> Batch.MaxEntries
    let indexes = Array.zeroCreate<uint64> Batch.MaxEntries
    let kinds = Array.zeroCreate<EntryType> Batch.MaxEntries
    let starts = Array.zeroCreate<int>(Batch.MaxEntries + 1)
    let mutable data = Array.zeroCreate<byte> Batch.DataBytes

    /// The most entries a batch holds.
    static member MaxEntries = 8192

    /// The payload bytes after which a batch is full (one payload may go past it).
    static member DataBytes = 1 <<< 20

    /// How many entries the batch holds.
    member _.Count = count

    /// Whether the batch should be passed on.
    member _.Full = count = Batch.MaxEntries || starts[count] >= Batch.DataBytes

    /// Empties the batch for reuse.
    member _.Clear() =
        count <- 0
        starts[0] <- 0

    /// Copies an entry in.
    member _.Add(term: uint64, index: uint64, kind: EntryType, payload: ReadOnlySpan<byte>) =
        let at = starts[count]

        if at + payload.Length > data.Length then
            let grown = Array.zeroCreate<byte>(max (2 * data.Length) (at + payload.Length))
            Buffer.BlockCopy(data, 0, grown, 0, at)
            data <- grown

        payload.CopyTo(Span(data, at, payload.Length))
        terms[count] <- term
        indexes[count] <- index
        kinds[count] <- kind
        starts[count + 1] <- at + payload.Length
        count <- count + 1

    /// The `i`th entry's term.
    member _.Term(i: int) = terms[i]

    /// The `i`th entry's index.
    member _.Index(i: int) = indexes[i]

    /// The `i`th entry's type.
    member _.Kind(i: int) = kinds[i]

    /// The `i`th entry's payload.
    member _.Data(i: int) =
        ReadOnlySpan(data, starts[i], starts[i + 1] - starts[i])

type private Item =
    | Filled of Batch
    | Ended
    | Failed of ExceptionDispatchInfo

/// Batches on their way from the reading thread, and back once written.
let private depth = 4

/// Hands `write` every entry `survey.VisitEntries` visits, in order, each batch once it is read;
/// the reading runs on a thread of its own. An exception of the read is raised here, after the
/// entries before it were written; an exception of `write` stops the read.
let visit (survey: LogSurvey) (write: Batch -> unit) =
    use filled = new BlockingCollection<Item>(depth)
    use empty = new BlockingCollection<Batch>(depth + 2)

    for _ in 1 .. depth + 2 do
        empty.Add(Batch())

    use stop = new CancellationTokenSource()

    let read () =
        try
            let current = ref (empty.Take stop.Token)

            survey.VisitEntries(
                EntryVisitor(fun term index kind data ->
                    current.Value.Add(term, index, kind, data)

                    if current.Value.Full then
                        filled.Add(Filled current.Value, stop.Token)
                        current.Value <- empty.Take stop.Token)
            )

            if current.Value.Count > 0 then
                filled.Add(Filled current.Value, stop.Token)

            filled.Add(Ended, stop.Token)
        with
        | :? OperationCanceledException when stop.IsCancellationRequested -> ()
        | e ->
            try
                filled.Add(Failed(ExceptionDispatchInfo.Capture e), stop.Token)
            with :? OperationCanceledException ->
                ()

    let reader = Thread(read, IsBackground = true, Name = "wal entries")
    reader.Start()

    try
        let mutable going = true

        while going do
            match filled.Take() with
            | Filled batch ->
                write batch
                batch.Clear()
                empty.Add batch
            | Ended -> going <- false
            | Failed e -> e.Throw()
    finally
        stop.Cancel()
        reader.Join()
