// A small key-value store in the spirit of etcd's raftexample, laid out as an etcd member
// directory (wal/ and snap/): every put goes to the WAL (fdatasynced) before it is applied; on
// start the store loads the newest snapshot the WAL holds (Wal.Snap, as etcd's server does) and
// replays the WAL after it; every few puts it saves a snapshot file as etcd's snap package
// writes it, records the snapshot in the WAL, releases the segments the snapshot covers and
// removes the segments and snapshot files no longer needed. `wal dump ROOT` reads it as it
// reads an etcd member directory.
// Run with: dotnet fsi build.fsx pack && dotnet fsi examples/kvstore.fsx
#r "nuget: Wal.Core"

open System
open System.IO
open System.Text
open System.Text.Json
open Wal
open Wal.Snap

type Store =
    {
        Dir: string
        Wal: WriteAheadLog
        Data: Collections.Generic.Dictionary<string, string>
        mutable Index: uint64
        mutable Snapshot: Snapshot
    }

let private walDir root = Path.Combine(root, "wal")
let private snapDir root = Path.Combine(root, "snap")
let private options = WalOptions(SegmentSizeBytes = 8192L)
let private term = 1UL

let private encode (key: string) (value: string) =
    ReadOnlyMemory(Encoding.UTF8.GetBytes(key + "=" + value))

let private decode (e: Entry) =
    let s = Encoding.UTF8.GetString e.Data.Span
    let i = s.IndexOf '='
    s[.. i - 1], s[i + 1 ..]

/// Opens the store: loads the newest snapshot the WAL holds, if any, then replays the WAL after it.
let openStore (root: string) =
    let data = Collections.Generic.Dictionary<string, string>()

    let snapshot =
        if WalDirectory.Exists(walDir root) then
            // Broken snapshot files are passed over (and renamed *.broken), as etcd does.
            match Snapshotter(snapDir root).LoadNewestAvailable(walDir root).Snapshot with
            | null -> Snapshot.Zero
            | found ->
                let saved =
                    JsonSerializer.Deserialize<Collections.Generic.Dictionary<string, string>>(found.Data.Span)

                for kv in saved do
                    data[kv.Key] <- kv.Value

                found.WalSnapshot
        else
            Snapshot.Zero

    let wal =
        if WalDirectory.Exists(walDir root) then
            let wal = WriteAheadLog.Open(walDir root, snapshot, options)
            let contents = wal.ReadAll()

            for e in contents.Entries do
                let key, value = decode e
                data[key] <- value

            wal
        else
            WriteAheadLog.Create(walDir root, ReadOnlyMemory(Encoding.UTF8.GetBytes "kvstore"), options)

    let index = max snapshot.Index wal.LastIndex

    {
        Dir = root
        Wal = wal
        Data = data
        Index = index
        Snapshot = snapshot
    }

/// Saves a snapshot of the whole map, records it in the WAL, and lets old segments and
/// snapshot files go. As etcd's raftexample: the snapshot file first, so that the WAL never
/// names a snapshot that has no file (a file the WAL does not name is merely passed over).
let snapshot (store: Store) =
    let snapshotter = Snapshotter(snapDir store.Dir)
    let state = JsonSerializer.SerializeToUtf8Bytes store.Data

    let saved =
        RaftSnapshot(store.Index, term, ReadOnlyMemory state, ConfState([ 1UL ]))

    snapshotter.Save saved |> ignore
    let snap = saved.WalSnapshot
    store.Wal.SaveSnapshot snap
    store.Wal.ReleaseLockTo snap.Index
    store.Snapshot <- snap

    // Segments wholly before the one that holds the snapshot are no longer needed to replay.
    let segments = Directory.GetFiles(walDir store.Dir, "*.wal") |> Array.sort

    let firstIndex (path: string) =
        Convert.ToUInt64(Path.GetFileNameWithoutExtension(path).Split('-')[1], 16)

    let keepFrom = segments |> Array.findIndexBack (fun s -> firstIndex s <= snap.Index)

    for old in segments[.. keepFrom - 1] do
        File.Delete old

    // Keep the two newest snapshot files, as etcd keeps the newest few.
    let names = snapshotter.Names()

    for old in Seq.skip (min 2 names.Count) names do
        File.Delete(Path.Combine(snapshotter.Directory, old))

/// A put: in the WAL (synced) first, then applied.
let put (store: Store) (key: string) (value: string) =
    let index = store.Index + 1UL
    store.Wal.Save(HardState(term, 1UL, index), [| Entry(term, index, encode key value) |])
    store.Index <- index
    store.Data[key] <- value

    if index % 50UL = 0UL then
        snapshot store

let close (store: Store) = store.Wal.Dispose()

// ---- a run
let root = Path.Combine(Path.GetTempPath(), $"wal-kvstore-{Guid.NewGuid():N}")
Directory.CreateDirectory root |> ignore

let first = openStore root

for i in 1..230 do
    put first $"key{i % 40}" $"value{i}"

printfn
    "wrote 230 puts; snapshot at %d; segments now: %d; snapshot files: %s"
    first.Snapshot.Index
    (Directory.GetFiles(walDir root, "*.wal").Length)
    (String.Join(", ", Snapshotter(snapDir root).Names()))

let expected = Collections.Generic.Dictionary(first.Data)
close first

let second = openStore root
printfn "reopened at snapshot %d, replayed up to %d: %d keys" second.Snapshot.Index second.Index second.Data.Count

let replayedTo = second.Index

let same =
    expected.Count = second.Data.Count
    && expected
       |> Seq.forall (fun kv -> second.Data.TryGetValue kv.Key = (true, kv.Value))

put second "key1" "after restart"
close second
let third = openStore root
printfn "key1 = %s" third.Data["key1"]
close third
Directory.Delete(root, true)

if not same then
    failwith "the reopened store differs from the one closed"

if third.Data["key1"] <> "after restart" || replayedTo <> 230UL then
    failwith $"the store did not come back as it was (replayed to {replayedTo})"
