/// wal-bench: the bench table (`dotnet fsi build.fsx bench`), and the child runs it starts.
///
///   wal-bench table [--workloads FILE] [--size BYTES] [--readall-entries N] [--gets N] [--rounds N] [--no-strace]
///   wal-bench open SIZE GETS   (the RaftLog.Open and GetEntry rows alone)
///   wal-bench readall DIR TIMES   (OpenForRead and ReadAll of an existing log, for profiling)
///   wal-bench open-log DIR TIMES  (RaftLog.Open of an existing log beside reading its files, for profiling)
///   wal-bench run CONTESTANT DIR PER BYTES SAVES sync|nosync BYTES_PER_SAVE WARMUP scan|noscan
///   wal-bench floor DIR SAVES BYTES   (each way Linux makes an append durable: Saves/s and CPU per Save)
module Wal.Bench.Program

open System
open System.IO

type Settings =
    {
        Workloads: Workload list
        /// Bytes of the log RaftLog.Open is timed on.
        OpenBytes: int64
        ReadAllEntries: int
        Gets: int
        Strace: bool
        /// Times through the rotation (forward and back).
        Rounds: int
    }

/// "1GB", "256MB", "64KiB" or a number of bytes.
let parseSize (text: string) =
    let m =
        Text.RegularExpressions.Regex.Match(
            text.Trim(),
            @"^(\d+(?:\.\d+)?)\s*([KMG]i?B|B)?$",
            Text.RegularExpressions.RegexOptions.IgnoreCase
        )

    if not m.Success then
        failwith $"size: {text} is not a size such as 1GB, 256MB or 1000000"

    let unit =
        match m.Groups[2].Value.ToUpperInvariant() with
        | ""
        | "B" -> 1.0
        | "KB" -> 1e3
        | "MB" -> 1e6
        | "GB" -> 1e9
        | "KIB" -> 1024.0
        | "MIB" -> 1048576.0
        | _ -> 1073741824.0

    int64 (float m.Groups[1].Value * unit)

let rec private parse (s: Settings) =
    function
    | [] -> s
    | "--workloads" :: file :: rest ->
        parse
            { s with
                Workloads = Workload.load file
            }
            rest
    | "--size" :: size :: rest -> parse { s with OpenBytes = parseSize size } rest
    | "--readall-entries" :: n :: rest -> parse { s with ReadAllEntries = int n } rest
    | "--gets" :: n :: rest -> parse { s with Gets = int n } rest
    | "--no-strace" :: rest -> parse { s with Strace = false } rest
    | "--rounds" :: n :: rest -> parse { s with Rounds = max 1 (int n) } rest
    | other :: _ -> failwith $"wal-bench table: unknown option {other}"

let private env (name: string) =
    match Environment.GetEnvironmentVariable name with
    | null
    | "" -> None
    | v -> Some v

/// The repository root: the nearest directory above this program holding Wal.sln.
let private root () =
    let rec up (d: DirectoryInfo) =
        if isNull d then
            failwith "wal-bench: run it from inside the repository (no Wal.sln above it)"
        elif File.Exists(Path.Combine(d.FullName, "Wal.sln")) then
            d.FullName
        else
            up d.Parent

    up (DirectoryInfo AppContext.BaseDirectory)

let private progress (text: string) =
    eprintfn "[%s] %s" (DateTime.UtcNow.ToString "HH:mm:ss") text

/// Forward then backward: A B C C B A (ABBA for two), so that each contestant runs once early
/// and once late, and each one's figure is the mean of the two.
let private rotation (rounds: int) (contestants: Contestant list) =
    List.replicate rounds (contestants @ List.rev contestants) |> List.concat

type private Measured =
    {
        Results: Map<Contestant, RunResult>
        BytesPerSave: int
    }

/// Runs the workload for each contestant in rotation; the median of each contestant's runs (with
/// one round, the mean of its two).
let private measureWorkload
    (rootDir: string)
    (rounds: int)
    (contestants: Contestant list)
    (w: Workload)
    (warmup: int)
    (scan: bool)
    =
    let bytesPerSave = EngineRun.bytesPerSave w

    let runs =
        [
            for c in rotation rounds contestants do
                progress $"{w.Name}: {Contestant.name c}"

                match Contestant.run rootDir c w bytesPerSave warmup scan with
                | Some r -> c, r
                | None -> ()
        ]

    let mean (rs: RunResult list) =
        let avg (f: RunResult -> float) =
            let sorted = rs |> List.map f |> List.sort |> Array.ofList
            let n = sorted.Length
            (sorted[(n - 1) / 2] + sorted[n / 2]) / 2.0

        // The run that allocated most, outside its cuts, gives the allocation figures.
        let most = rs |> List.maxBy (fun r -> r.AllocatedBytes - r.CutAllocatedBytes)

        {
            Seconds = avg _.Seconds
            CpuSeconds = avg _.CpuSeconds
            Entries = rs.Head.Entries
            AllocatedBytes = most.AllocatedBytes
            CutAllocatedBytes = most.CutAllocatedBytes
            Cuts = most.Cuts
            ScanSeconds = avg _.ScanSeconds
            ScanCpuSeconds = avg _.ScanCpuSeconds
            ScanEntries = rs.Head.ScanEntries
            ScanAllocatedBytes = rs |> List.map _.ScanAllocatedBytes |> List.max
        }

    {
        Results =
            runs
            |> List.groupBy fst
            |> List.map (fun (c, rs) -> c, mean (List.map snd rs))
            |> Map.ofList
        BytesPerSave = bytesPerSave
    }

let private cells (f: Contestant -> string) = Contestant.all |> List.map f

let private table (s: Settings) =
    let rootDir = root ()

    let contestants =
        Contestant.all
        |> List.filter (fun c -> c <> Etcd || File.Exists(EtcdRun.peer rootDir))

    let started = DateTime.UtcNow
    let load = File.ReadAllText("/proc/loadavg").Trim()
    let names = String.Join(", ", List.map Contestant.name contestants)
    progress $"contestants {names}; load {load}"

    let writes =
        [
            for w in s.Workloads -> w, measureWorkload rootDir s.Rounds contestants w 50 false
        ]

    let readAllWorkload =
        {
            Name = $"ReadAll {s.ReadAllEntries} x 100 B"
            EntriesPerSave = 1000
            EntryBytes = 100
            Saves = max 1 (s.ReadAllEntries / 1000)
            SyncPerSave = true
        }

    let readAll =
        // The engine without zero-ahead writes the same files: its scan would repeat the engine's.
        measureWorkload
            rootDir
            1
            (contestants |> List.filter (fun c -> c <> RawLoop && c <> NoZeroAhead))
            readAllWorkload
            0
            true

    progress "ReadAll of 4 KiB entries against File.ReadAllBytes"
    let files = Reads.readAllFiles 50_000
    progress $"RaftLog.Open on {s.OpenBytes} bytes, then {s.Gets} GetEntry"
    let opened = Reads.openAndGet s.OpenBytes s.Gets

    let durability =
        if s.Strace && Durability.available () then
            let w1 =
                s.Workloads
                |> List.tryFind (fun w -> w.EntriesPerSave = 1)
                |> Option.defaultValue s.Workloads.Head

            let bytesPerSave = EngineRun.bytesPerSave w1

            [
                for c in contestants do
                    progress $"strace: {Contestant.name c}"
                    c, Durability.describe (Durability.measure rootDir c w1 bytesPerSave 20)
            ]
            |> Map.ofList
        else
            Map.empty

    let finished = DateTime.UtcNow

    let rows =
        [
            for w, m in writes do
                let rate c =
                    m.Results.TryFind c |> Option.map (fun r -> float r.Entries / r.Seconds)

                let cpu c =
                    m.Results.TryFind c
                    |> Option.map (fun r -> r.CpuSeconds * 1e6 / float r.Entries)

                let show f fmt c =
                    f c |> Option.map fmt |> Option.defaultValue "-"

                let best = [ rate RawLoop; rate Etcd ] |> List.choose id

                let limit = if best.IsEmpty then nan else List.max best

                let engine = rate Engine |> Option.defaultValue nan

                let etcdCpu = cpu Etcd |> Option.defaultValue nan
                let engineCpu = cpu Engine |> Option.defaultValue nan

                if w.SyncPerSave then
                    yield
                        Table.judged
                            $"{w.Name}, entries/s"
                            (cells (show rate Table.count))
                            $"max(raw, etcd) {Table.count limit}"
                            (engine / limit)
                            0.95
                            false

                    // The raw loop's own CPU beside etcd's: what the kernel's writes and fdatasyncs
                    // cost before any framing, a floor the engine cannot go below.
                    let floor =
                        match cpu RawLoop with
                        | Some raw -> sprintf "etcd (raw loop %.2fx)" (raw / etcdCpu)
                        | None -> "etcd"

                    yield
                        Table.judged
                            $"{w.Name}, CPU us/entry"
                            (cells (show cpu (sprintf "%.2f")))
                            floor
                            (engineCpu / etcdCpu)
                            0.5
                            true
                else
                    // Not judged: the engine and etcd sync every Save with entries anyway (MustSync),
                    // the raw loop, FasterLog and DotNext then commit once at the end.
                    yield Table.figures $"{w.Name} (no sync per Save), entries/s" (cells (show rate Table.count))
                    yield Table.figures $"{w.Name} (no sync per Save), CPU us/entry" (cells (show cpu (sprintf "%.2f")))

            let r = readAll.Results

            let scanRate c =
                r.TryFind c |> Option.map (fun x -> float x.ScanEntries / x.ScanSeconds)

            let payload =
                float readAllWorkload.EntryBytes * float (Workload.entries readAllWorkload)

            yield
                Table.judged
                    $"{readAllWorkload.Name}, entries/s"
                    (cells (fun c -> scanRate c |> Option.map Table.count |> Option.defaultValue "-"))
                    "etcd"
                    ((scanRate Engine |> Option.defaultValue nan)
                     / (scanRate Etcd |> Option.defaultValue nan))
                    10.0
                    false

            yield
                Table.judged
                    $"{readAllWorkload.Name}, allocated / payload"
                    (cells (fun c ->
                        match c, r.TryFind c with
                        | (Engine | Faster | DotNext), Some x -> sprintf "%.2f" (float x.ScanAllocatedBytes / payload)
                        | _ -> "-"))
                    "payload"
                    (float r[Engine].ScanAllocatedBytes / payload)
                    1.2
                    true

            let readAllRate = float files.RecordBytes / files.ReadAllSeconds / 1e6
            let filesRate = float files.FileBytes / files.FilesSeconds / 1e6

            yield
                Table.judged
                    $"ReadAll {files.Entries} x 4 KiB, MB/s"
                    (cells (fun c -> if c = Engine then sprintf "%.0f" readAllRate else ""))
                    $"File.ReadAllBytes %.0f{filesRate}"
                    (readAllRate / filesRate)
                    0.5
                    false

            yield
                Table.judged
                    $"RaftLog.Open, {opened.Entries} x 100 B ({float opened.FileBytes / 1e9:F2} GB), s"
                    (cells (fun c -> if c = Engine then sprintf "%.3f" opened.OpenSeconds else ""))
                    $"reading its files %.3f{opened.FilesSeconds}"
                    (opened.OpenSeconds / opened.FilesSeconds)
                    2.0
                    true

            let getRate (g: Reads.Gets) = float opened.Gets / g.Seconds

            yield
                Table.judged
                    "GetEntry random index, per s"
                    (cells (fun c ->
                        if c = Engine then
                            Table.count (getRate opened.Mapped)
                        else
                            ""))
                    "1M/s"
                    (getRate opened.Mapped / 1e6)
                    1.0
                    false

            yield
                Table.figures
                    "GetEntry, MapSegments = false (a pread each), per s"
                    (cells (fun c ->
                        if c = Engine then
                            Table.count (getRate opened.Positioned)
                        else
                            ""))

            let beyond = max opened.Mapped.BytesBeyondData opened.Positioned.BytesBeyondData

            yield
                { Table.judged
                      "GetEntry, B allocated beyond the data"
                      (cells (fun c -> if c = Engine then sprintf "%.1f" beyond else ""))
                      ""
                      nan
                      0.0
                      true with
                    Target = "0 B"
                    Met = if beyond <= 0.5 then "met" else "NOT MET"
                }

            // Per entry, outside the Saves that cut a segment (the engine's cut, about every 64 MB,
            // allocates once; its row follows).
            let perEntry (r: RunResult) =
                float (r.AllocatedBytes - r.CutAllocatedBytes) / float r.Entries

            let saveAlloc =
                writes
                |> List.map (fun (_, m) -> m.Results.TryFind Engine |> Option.map perEntry |> Option.defaultValue 0.0)
                |> List.max

            // Per workload, in the table's order: what the saving thread allocated over the timed
            // Saves, per entry.
            yield
                { Table.judged
                      "Save, B allocated per entry (each workload)"
                      (cells (fun c ->
                          if c = Etcd then
                              "-"
                          else
                              writes
                              |> List.choose (fun (_, m) -> m.Results.TryFind c)
                              |> List.map (fun r -> sprintf "%.1f" (perEntry r))
                              |> String.concat " / "))
                      ""
                      nan
                      0.0
                      true with
                    Target = "0 B"
                    Met = if saveAlloc < 0.05 then "met" else "NOT MET"
                }

            yield
                Table.figures
                    "Save, B allocated per segment cut (not per entry)"
                    (cells (fun c ->
                        if c <> Engine then
                            ""
                        else
                            writes
                            |> List.choose (fun (_, m) -> m.Results.TryFind c)
                            |> List.map (fun r ->
                                if r.Cuts > 0 then
                                    sprintf "%.0f" (float r.CutAllocatedBytes / float r.Cuts)
                                else
                                    "-")
                            |> String.concat " / "))

            if not durability.IsEmpty then
                yield
                    Table.figures
                        "durability (strace -f, W1)"
                        (cells (fun c -> durability.TryFind c |> Option.defaultValue "-"))
        ]

    printfn
        "wal-bench, %s to %s UTC; load average at the start: %s"
        (started.ToString "yyyy-MM-dd HH:mm")
        (finished.ToString "HH:mm")
        load

    printfn
        "Order: each workload runs %s, then the reverse, %d time(s) (each figure is the median of a contestant's runs)."
        (String.Join(", ", List.map Contestant.name contestants))
        s.Rounds

    let perSave =
        writes
        |> List.map (fun (w, m) -> sprintf "%s %d B" (w.Name.Split(':').[0]) m.BytesPerSave)

    printfn
        "Raw loop: RandomAccess.Write (pwrite) of the engine's bytes per Save (%s) and fdatasync by P/Invoke."
        (String.Join(", ", perSave))

    printfn
        "CPU: user+system of the contestant's process over the timed Saves (.NET: Process.TotalProcessorTime; Go: getrusage)."

    printfn ""
    printfn "%s" (Table.render rows)
    printfn ""
    printfn "load average at the end: %s" (File.ReadAllText("/proc/loadavg").Trim())

[<EntryPoint>]
let main argv =
    match List.ofArray argv with
    | [ "run"; key; dir; per; bytes; saves; sync; bytesPerSave; warmup; scan ] ->
        let w =
            {
                Name = "child"
                EntriesPerSave = int per
                EntryBytes = int bytes
                Saves = int saves
                SyncPerSave = (sync = "sync")
            }

        let result =
            Contestant.runHere (Contestant.ofKey key) dir w (int bytesPerSave) (int warmup) (scan = "scan")

        printfn "%s" (Run.toJson result)
        0
    | [ "open"; size; gets ] ->
        let o = Reads.openAndGet (parseSize size) (int gets)

        printfn
            "RaftLog.Open of %d entries (%d B of files): %.3f s, reading the files %.3f s (%.2fx); GetEntry %.0f/s mapped, %.0f/s positioned (MapSegments = false), %.1f and %.1f B beyond the data"
            o.Entries
            o.FileBytes
            o.OpenSeconds
            o.FilesSeconds
            (o.OpenSeconds / o.FilesSeconds)
            (float o.Gets / o.Mapped.Seconds)
            (float o.Gets / o.Positioned.Seconds)
            o.Mapped.BytesBeyondData
            o.Positioned.BytesBeyondData

        0
    | [ "readall"; dir; times ] ->
        // OpenForRead and ReadAll of an existing log, `times` times in one process (for profiling).
        for i in 1 .. int times do
            let system = Diagnostics.Process.GetCurrentProcess().PrivilegedProcessorTime
            let clock = Run.start ()
            use wal = Wal.WriteAheadLog.OpenForRead(dir, Wal.Snapshot.Zero)
            let all = wal.ReadAll()
            let seconds, cpu, _, processBytes = Run.stop clock

            let system =
                Diagnostics.Process.GetCurrentProcess().PrivilegedProcessorTime - system

            let payload = all.Entries |> Seq.sumBy (fun e -> int64 e.Data.Length)

            printfn
                "%d: %.3f s, CPU %.3f s (system %.3f s), %d entries, allocated %.3fx the payload"
                i
                seconds
                cpu
                system.TotalSeconds
                all.Entries.Count
                (float processBytes / float payload)

        0
    | [ "open-log"; dir; times ] ->
        // RaftLog.Open of an existing log beside reading its files, `times` times in one process (for profiling).
        let files = IO.Directory.GetFiles(dir, "*.wal") |> Array.sort

        for i in 1 .. int times do
            let clock = Diagnostics.Stopwatch.StartNew()

            for f in files do
                IO.File.ReadAllBytes f |> ignore

            let read = clock.Elapsed.TotalSeconds
            clock.Restart()
            let cpu = Diagnostics.Process.GetCurrentProcess().TotalProcessorTime
            let log = Wal.RaftLog.Open(dir, Wal.Snapshot.Zero)
            let opened = clock.Elapsed.TotalSeconds
            let cpu = Diagnostics.Process.GetCurrentProcess().TotalProcessorTime - cpu

            printfn
                "%d: Open %.3f s (CPU %.3f s), reading the files %.3f s (%.2fx), last index %d"
                i
                opened
                cpu.TotalSeconds
                read
                (opened / read)
                log.LastIndex

            log.Dispose()

        0
    | [ "floor"; dir; saves; bytes ] ->
        Floor.run dir (int saves) (int bytes)
        0
    | "table" :: options ->
        let defaults =
            {
                Workloads =
                    env "WAL_BENCH_WORKLOADS"
                    |> Option.map Workload.load
                    |> Option.defaultValue Workload.defaults
                OpenBytes =
                    env "WAL_BENCH_SIZE"
                    |> Option.map parseSize
                    |> Option.defaultValue 1_000_000_000L
                ReadAllEntries = 1_000_000
                Gets = 1_000_000
                Strace = true
                Rounds = 3
            }

        table (parse defaults options)
        0
    | _ ->
        eprintfn
            "usage: wal-bench table [--workloads FILE] [--size BYTES] [--readall-entries N] [--gets N] [--rounds N] [--no-strace]"

        eprintfn "       wal-bench open SIZE GETS   (the RaftLog.Open and GetEntry rows alone)"
        eprintfn "       wal-bench readall DIR TIMES   (OpenForRead and ReadAll of a log, TIMES times in one process)"
        eprintfn "       wal-bench open-log DIR TIMES  (RaftLog.Open of a log beside reading its files, TIMES times)"
        eprintfn "       wal-bench run CONTESTANT DIR PER BYTES SAVES sync|nosync BYTES_PER_SAVE WARMUP scan|noscan"
        eprintfn "       wal-bench floor DIR SAVES BYTES  (each durable-append mechanism: Saves/s, CPU/Save)"
        2
