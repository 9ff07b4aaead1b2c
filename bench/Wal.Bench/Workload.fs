/// What a write workload is, the default table's three, and reading them from a file.
namespace Wal.Bench

open System.IO
open System.Text.Json

/// Saves of a fixed batch: each Save appends EntriesPerSave entries of EntryBytes bytes and, when
/// SyncPerSave, makes them durable before it returns (an fdatasync, or the contestant's commit).
type Workload =
    {
        Name: string
        EntriesPerSave: int
        EntryBytes: int
        Saves: int
        SyncPerSave: bool
    }

[<RequireQualifiedAccess>]
module Workload =

    /// The issue's W1-W3, sized for a few seconds each on a shared 2-core machine.
    let defaults =
        [
            {
                Name = "W1: 1 x 100 B per Save"
                EntriesPerSave = 1
                EntryBytes = 100
                Saves = 2000
                SyncPerSave = true
            }
            {
                Name = "W2: 100 x 100 B per Save"
                EntriesPerSave = 100
                EntryBytes = 100
                Saves = 500
                SyncPerSave = true
            }
            {
                Name = "W3: 100 x 4 KiB per Save"
                EntriesPerSave = 100
                EntryBytes = 4096
                Saves = 200
                SyncPerSave = true
            }
        ]

    /// Entries the workload appends in its timed part.
    let entries (w: Workload) = w.EntriesPerSave * w.Saves

    let private number (e: JsonElement) (name: string) (fallback: int option) =
        match e.TryGetProperty name with
        | true, v when v.ValueKind = JsonValueKind.Number -> v.GetInt32()
        | true, _ -> failwith $"workloads: \"{name}\" must be a number"
        | false, _ ->
            match fallback with
            | Some n -> n
            | None -> failwith $"workloads: each workload needs \"{name}\""

    /// Parses a workloads file: a JSON array of objects with "name", "entriesPerSave",
    /// "entryBytes", "saves" and "syncPerSave" (true when left out).
    let parse (json: string) =
        use doc = JsonDocument.Parse json

        if doc.RootElement.ValueKind <> JsonValueKind.Array then
            failwith "workloads: the file holds a JSON array of workloads"

        [
            for e in doc.RootElement.EnumerateArray() do
                let w =
                    {
                        Name =
                            match e.TryGetProperty "name" with
                            | true, v -> v.GetString()
                            | false, _ -> failwith "workloads: each workload needs \"name\""
                        EntriesPerSave = number e "entriesPerSave" None
                        EntryBytes = number e "entryBytes" None
                        Saves = number e "saves" None
                        SyncPerSave =
                            match e.TryGetProperty "syncPerSave" with
                            | true, v -> v.GetBoolean()
                            | false, _ -> true
                    }

                if w.EntriesPerSave < 1 || w.EntryBytes < 0 || w.Saves < 1 then
                    failwith $"workloads: {w.Name}: entriesPerSave and saves must be positive, entryBytes not negative"

                w
        ]

    /// Reads a workloads file.
    let load (path: string) = parse (File.ReadAllText path)
