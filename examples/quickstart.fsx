// Quickstart: create a WAL, save entries, close it, reopen it and read everything back.
// Run with: dotnet fsi build.fsx build && dotnet fsi examples/quickstart.fsx
#r "../src/Wal.Core/bin/Release/net10.0/Google.Protobuf.dll"
#r "../src/Wal.Core/bin/Release/net10.0/Wal.Core.dll"

open System
open System.IO
open System.Text
open Wal

let dir = Path.Combine(Path.GetTempPath(), $"wal-quickstart-{Guid.NewGuid():N}")

let utf8 (s: string) =
    ReadOnlyMemory(Encoding.UTF8.GetBytes s)

// A small segment size, so that this short run cuts a few segments.
let options = WalOptions(SegmentSizeBytes = 4096L)

do
    use wal = WriteAheadLog.Create(dir, utf8 "node-1", options)

    for i in 1UL .. 200UL do
        let entry = Entry(1UL, i, utf8 $"put key{i} = value{i}")
        wal.Save(HardState(1UL, 1UL, i), [| entry |])

let contents =
    use wal = WriteAheadLog.Open(dir, Snapshot.Zero, options)
    wal.ReadAll()

printfn "metadata: %s" (Encoding.UTF8.GetString(contents.Metadata.Span))
printfn "state:    term=%d vote=%d commit=%d" contents.State.Term contents.State.Vote contents.State.Commit
printfn "entries:  %d" contents.Entries.Count

for e in contents.Entries |> Seq.truncate 3 do
    printfn "  %d/%d %s" e.Term e.Index (Encoding.UTF8.GetString(e.Data.Span))

printfn "segments: %s" (String.Join(", ", Directory.GetFiles(dir, "*.wal") |> Array.map Path.GetFileName |> Array.sort))

if contents.Entries.Count <> 200 || contents.State.Commit <> 200UL then
    eprintfn "quickstart: expected 200 entries and commit 200"
    exit 1

printfn
    "first bytes: %s"
    (Convert.ToHexString(File.ReadAllBytes(Path.Combine(dir, "0000000000000000-0000000000000000.wal")).[0..63]))

Directory.Delete(dir, true)
