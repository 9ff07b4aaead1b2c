// A small key-value store in the spirit of etcd's raftexample: every put goes to the WAL
// (fdatasynced) before it is applied; on start the store replays the WAL from its last
// snapshot; every few puts it snapshots its state to a file, records the snapshot in the WAL,
// releases the segments the snapshot covers and removes the ones no longer needed.
// Run with: dotnet fsi build.fsx pack && dotnet fsi examples/kvstore.fsx
#r "nuget: Wal.Core"

open System
open System.IO
open System.Text
open System.Text.Json
open Wal

type Store =
    {
        Dir: string
        Wal: WriteAheadLog
        Data: Collections.Generic.Dictionary<string, string>
        mutable Index: uint64
        mutable Snapshot: Snapshot
    }

let private walDir root = Path.Combine(root, "wal")
let private snapFile root = Path.Combine(root, "snapshot.json")
let private options = WalOptions(SegmentSizeBytes = 8192L)
let private term = 1UL

let private encode (key: string) (value: string) =
    ReadOnlyMemory(Encoding.UTF8.GetBytes(key + "=" + value))

let private decode (e: Entry) =
    let s = Encoding.UTF8.GetString e.Data.Span
    let i = s.IndexOf '='
    s[.. i - 1], s[i + 1 ..]

/// Opens the store: loads the snapshot file if any, then replays the WAL after it.
let openStore (root: string) =
    let data = Collections.Generic.Dictionary<string, string>()

    let snapshot =
        if File.Exists(snapFile root) then
            let doc = JsonDocument.Parse(File.ReadAllText(snapFile root))
            let r = doc.RootElement

            for p in r.GetProperty("data").EnumerateObject() do
                data[p.Name] <- p.Value.GetString()

            Snapshot(r.GetProperty("index").GetUInt64(), r.GetProperty("term").GetUInt64())
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

/// Writes a snapshot of the whole map, records it in the WAL, and lets old segments go.
let snapshot (store: Store) =
    let snap = Snapshot(store.Index, term)
    let tmp = snapFile store.Dir + ".tmp"

    File.WriteAllText(
        tmp,
        JsonSerializer.Serialize
            {|
                index = snap.Index
                term = snap.Term
                data = store.Data
            |}
    )

    File.Move(tmp, snapFile store.Dir, true)
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
    "wrote 230 puts; snapshot at %d; segments now: %d"
    first.Snapshot.Index
    (Directory.GetFiles(walDir root, "*.wal").Length)

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
