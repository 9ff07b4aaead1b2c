/// The asynchronous API: SaveAsync and AppendAsync are cancelled whole or not at all (never in
/// the middle of a write), ReadEntriesAsync follows an appending log, and DisposeAsync closes.
module Wal.Properties.AsyncTests

open System
open System.Threading
open System.Threading.Tasks
open Expecto
open Wal
open Wal.Properties.Support

[<Literal>]
let private Dir = "/data/wal"

let private entry (index: uint64) =
    Entry(1UL, index, ReadOnlyMemory(Array.create 100 (byte index)))

/// Waits for a task and gives what it threw, unwrapped.
let private outcome (task: Task) =
    try
        task.GetAwaiter().GetResult()
        None
    with ex ->
        Some ex

let private collect (entries: Collections.Generic.IAsyncEnumerable<Entry>) =
    let e = entries.GetAsyncEnumerator()
    let got = ResizeArray()

    while e.MoveNextAsync().AsTask().GetAwaiter().GetResult() do
        got.Add e.Current

    e.DisposeAsync().AsTask().Wait()
    List.ofSeq got

let tests =
    testList
        "Async"
        [
            testCase "SaveAsync writes as Save does, and a token cancelled before it starts writes nothing"
            <| fun () ->
                let fs, options = memoryOptions 4096L
                let wal = WriteAheadLog.Create(Dir, mem "m", options)
                wal.SaveAsync(HardState(1UL, 0UL, 0UL), ReadOnlyMemory [| entry 1UL |]).AsTask().Wait()
                let before = fs.Mutations
                use cancelled = new CancellationTokenSource()
                cancelled.Cancel()

                let thrown =
                    outcome (
                        wal
                            .SaveAsync(HardState(1UL, 0UL, 1UL), ReadOnlyMemory [| entry 2UL |], cancelled.Token)
                            .AsTask()
                    )

                Expect.isTrue (thrown |> Option.exists (fun ex -> ex :? OperationCanceledException)) "cancelled"
                Expect.equal fs.Mutations before "nothing written"
                wal.DisposeAsync().AsTask().Wait()
                use read = WriteAheadLog.Open(Dir, Snapshot.Zero, options)
                Expect.equal (read.ReadAll().Entries |> Seq.map (fun e -> e.Index) |> List.ofSeq) [ 1UL ] "one entry"

            testCase
                "a token cancelled once the write has started does not stop it: the Append completes and is durable"
            <| fun () ->
                let fs, options = memoryOptions 4096L
                let log = RaftLog.Create(Dir, mem "m", options)
                use cts = new CancellationTokenSource()
                let mutable cancelledAt = 0
                // Cancel at the first write the Append makes, from inside it.
                fs.Observe <-
                    Some(fun n _ ->
                        if cancelledAt = 0 then
                            cancelledAt <- n
                            cts.Cancel())

                let thrown =
                    outcome (
                        log.AppendAsync(ReadOnlyMemory [| entry 1UL |], HardState(1UL, 0UL, 0UL), cts.Token).AsTask()
                    )

                fs.Observe <- None
                Expect.isGreaterThan cancelledAt 0 "the token was cancelled during the write"
                Expect.isNone thrown "the Append ran to its end"
                Expect.equal log.LastIndex 1UL "and is visible"

                let crashed =
                    RaftLog.Open(Dir, Snapshot.Zero, Wal.Simulation.Harness.optionsFor (fs.AfterPowerCut 0) 4096L)

                Expect.equal crashed.LastIndex 1UL "and survives a power cut"
                crashed.Dispose()
                log.Dispose()

            testCase "AppendAsync with a token already cancelled writes nothing"
            <| fun () ->
                let fs, options = memoryOptions 4096L
                use log = RaftLog.Create(Dir, mem "m", options)
                let before = fs.Mutations

                let thrown =
                    outcome (
                        log
                            .AppendAsync(ReadOnlyMemory [| entry 1UL |], HardState.Empty, CancellationToken(true))
                            .AsTask()
                    )

                Expect.isTrue (thrown |> Option.exists (fun ex -> ex :? OperationCanceledException)) "cancelled"
                Expect.equal fs.Mutations before "nothing written"
                Expect.equal log.LastIndex 0UL "no entry"

            testCase "ReadEntriesAsync reads a range in batches, and to the end of a log still being appended to"
            <| fun () ->
                let _, options = memoryOptions 65536L
                use log = RaftLog.Create(Dir, mem "m", options)
                log.Append([| for i in 1UL .. 30000UL -> entry i |], HardState(1UL, 0UL, 0UL))
                let some = collect (log.ReadEntriesAsync(5UL, 25001UL))
                Expect.equal (some |> List.map (fun e -> e.Index)) [ 5UL .. 25000UL ] "a range, over several batches"
                let all = collect (log.ReadEntriesAsync 1UL)
                Expect.equal all.Length 30000 "to the end"
                Expect.equal all[29999] (entry 30000UL) "the data"
                use cts = new CancellationTokenSource()
                cts.Cancel()

                Expect.throwsT<OperationCanceledException>
                    (fun () -> collect (log.ReadEntriesAsync(1UL, cancellationToken = cts.Token)) |> ignore)
                    "cancelled"

            testCase "DisposeAsync closes the log"
            <| fun () ->
                let _, options = memoryOptions 4096L
                let log = RaftLog.Create(Dir, mem "m", options)
                log.AppendAsync(ReadOnlyMemory [| entry 1UL |], HardState.Empty).AsTask().Wait()
                log.DisposeAsync().AsTask().Wait()
                Expect.equal (errorKind (fun () -> log.LastIndex |> ignore)) (Some WalErrorKind.Closed) "closed"
        ]
