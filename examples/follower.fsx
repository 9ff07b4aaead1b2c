// A raft-style follower catching up: the leader appends to its RaftLog (each Append synced)
// while a follower, far behind, reads ranges with raft's size limit and applies them, until it
// has caught up with everything the leader had made durable. The leader never waits for the
// follower, and the follower never sees an entry the leader could lose in a crash.
// Run with: dotnet fsi build.fsx pack && dotnet fsi examples/follower.fsx
#r "nuget: Wal.Core"

open System
open System.IO
open System.Threading
open Wal

let dir = Path.Combine(Path.GetTempPath(), $"wal-follower-{Guid.NewGuid():N}")

let log =
    RaftLog.Create(dir, ReadOnlyMemory "leader"B, WalOptions(SegmentSizeBytes = 1_000_000L))

let entry (term: uint64) (index: uint64) =
    Entry(term, index, ReadOnlyMemory(Text.Encoding.UTF8.GetBytes $"command {index} of term {term}"))

// The leader starts with 20,000 entries the follower has not seen.
log.Append([| for i in 1UL .. 20_000UL -> entry 1UL i |], HardState(1UL, 1UL, 20_000UL))

let leaderDone = new ManualResetEventSlim()

let leader =
    Thread(fun () ->
        // Then 500 more proposals, 20 entries each, while the follower catches up.
        for round in 0..499 do
            let first = log.LastIndex + 1UL
            log.Append([| for i in first .. first + 19UL -> entry 2UL i |], HardState(2UL, 1UL, first - 1UL))

        leaderDone.Set())

leader.Start()

// The follower: a MsgApp's worth (64 KiB) at a time, from where it stands.
let mutable matched = 0UL
let mutable batches = 0
let mutable checksum = 0UL
let maxMsgSize = 64UL * 1024UL

while not leaderDone.IsSet || matched < log.LastIndex do
    let last = log.LastIndex

    if matched < last then
        let entries = log.GetEntries(matched + 1UL, last + 1UL, maxMsgSize)

        for e in entries do
            // What a follower checks before it accepts entries: they follow on, and the terms agree.
            if e.Index <> matched + 1UL || log.Term e.Index <> e.Term then
                failwithf "entry %d out of order" e.Index

            checksum <- checksum + e.Index * e.Term
            matched <- e.Index

        batches <- batches + 1
    else
        Thread.Sleep 1

leader.Join()

printfn
    "leader's last index %d; the follower matched %d in %d reads of up to %d KiB"
    log.LastIndex
    matched
    batches
    (maxMsgSize / 1024UL)

let expected =
    [ 1UL .. 20_000UL ]
    |> List.sumBy id
    |> fun ones -> ones + ([ 20_001UL .. 30_000UL ] |> List.sumBy (fun i -> 2UL * i))

if matched <> 30_000UL || checksum <> expected then
    failwithf "the follower holds %d entries (checksum %d, expected %d)" matched checksum expected

// The same catch-up as an asynchronous stream, for a second follower starting from 25,001.
let late =
    task {
        let mutable n = 0
        let e = log.ReadEntriesAsync(25_001UL).GetAsyncEnumerator()

        while! e.MoveNextAsync() do
            n <- n + 1

        return n
    }

printfn "an async follower read %d entries" late.Result
log.Dispose()
Directory.Delete(dir, true)
