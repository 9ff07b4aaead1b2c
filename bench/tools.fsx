// The tools on a large log: `wal verify`, `check-dir`, `dump --json` and `dump` on a log of about
// 1 GB, each beside a reference that only reads the same bytes (`cat | wc -c`, `cat | base64`),
// with its time, CPU time and peak RSS (GNU time's %e, %U + %S and %M), all in one run of this
// script. Each tool and its reference alternate (reference, tool, tool, reference, and so on for
// WAL_TOOLS_ROUNDS rounds, default 1), and each figure is the fastest of its runs, so that a
// ratio compares runs made a few seconds apart on a machine whose load changes.
// Run: dotnet fsi build.fsx tools-bench   (or, after a build: dotnet fsi bench/tools.fsx)
// WAL_TOOLS_ENTRIES sets the log's size (default 10,000,000 entries of 80-byte payloads, ~1.1 GB;
// 1,000,000 for quick iterations); WAL_TOOLS_DIR keeps the log in a directory of one's choice (it
// is then not deleted, and a later run reuses it).
#r "../src/Wal.Core/bin/Release/net10.0/Google.Protobuf.dll"
#r "../src/Wal.Core/bin/Release/net10.0/Wal.Core.dll"

open System
open System.Diagnostics
open System.IO
open Wal

let entries =
    match Environment.GetEnvironmentVariable "WAL_TOOLS_ENTRIES" with
    | null
    | "" -> 10_000_000
    | text -> int text

let keep, dir =
    match Environment.GetEnvironmentVariable "WAL_TOOLS_DIR" with
    | null
    | "" -> false, Path.Combine(Path.GetTempPath(), $"wal-tools-{Guid.NewGuid():N}")
    | given -> true, given

let wal =
    Path.GetFullPath(Path.Combine(__SOURCE_DIRECTORY__, "../src/Wal.Cli/bin/Release/net10.0/wal"))

/// A log of `count` entries in batches of 1,000 with a hard state each, and one overwrite (a new
/// leader's term replacing the last 1,000 entries of the first half), as raft writes them.
let generate (count: int) =
    let payload i =
        // An etcd-like put: text of 80 bytes that varies with the index.
        let text = $"put /registry/pods/default/pod-{i:D10} = value-{i:D10}-"
        Text.Encoding.ASCII.GetBytes(text.PadRight(80, 'x'))

    use log = WriteAheadLog.Create(dir, "node-1")
    let batch = 1000
    let half = uint64 (count / 2)
    let mutable index = 0UL
    let mutable term = 1UL

    let save (n: int) =
        let es =
            Array.init n (fun k ->
                Entry(term, index + uint64 k + 1UL, EntryType.Normal, ReadOnlyMemory(payload (int index + k + 1))))

        index <- index + uint64 n
        // The commit trails a batch behind, as a follower's would: the overwrite replaces no committed entry.
        log.Save(HardState(term, 1UL, (if index > 2000UL then index - 2000UL else 0UL)), ReadOnlySpan es)

    while index < uint64 count do
        if term = 1UL && index >= half then
            // The overwrite: a leader of term 2 replaces the last batch.
            term <- 2UL
            index <- index - uint64 batch

        save (min batch (count - int index))

let rounds =
    match Environment.GetEnvironmentVariable "WAL_TOOLS_ROUNDS" with
    | null
    | "" -> 1
    | text -> int text

/// One run under GNU time: exit code, elapsed seconds, CPU seconds (user + system, children
/// included), peak RSS in KB.
let time (command: string) (args: string list) =
    let output = Path.GetTempFileName()

    let info =
        ProcessStartInfo("/usr/bin/time", [ "-o"; output; "-f"; "%e %U %S %M"; command ] @ args)

    info.RedirectStandardOutput <- true
    use proc = Process.Start info
    proc.StandardOutput.ReadToEnd() |> ignore
    proc.WaitForExit()
    let line = File.ReadAllLines output |> Array.last
    File.Delete output

    match line.Split ' ' with
    | [| seconds; user; system; kb |] -> proc.ExitCode, float seconds, float user + float system, int64 kb
    | _ -> failwith $"GNU time printed {line}"

let seconds (_, s, _, _) = s

/// The fastest run of each.
let fastest runs = runs |> List.minBy seconds

/// A tool and its reference in alternation (reference, tool, tool, reference per round): the
/// fastest run of each. The first runs may still pull the log into the page cache.
let paired (reference: string * string list) (tool: string * string list) =
    let run (command, args) = time command args

    let refs, tools =
        [
            for _ in 1..rounds do
                let r1 = run reference
                let t1 = run tool
                let t2 = run tool
                let r2 = run reference
                [ r1; r2 ], [ t1; t2 ]
        ]
        |> List.unzip

    fastest (List.concat refs), fastest (List.concat tools)

let sh (script: string) =
    "sh", [ "-c"; script.Replace("DIR", dir) ]

try
    if
        not (Directory.Exists dir)
        || Seq.isEmpty (Directory.EnumerateFiles(dir, "*.wal"))
    then
        let clock = Stopwatch.StartNew()
        generate entries
        printfn "generated %d entries in %.1f s" entries clock.Elapsed.TotalSeconds

    let bytes =
        Directory.GetFiles(dir, "*.wal") |> Array.sumBy (fun f -> FileInfo(f).Length)

    printfn
        "log: %s, %d segments, %d bytes (%.2f GB)"
        dir
        (Directory.GetFiles(dir, "*.wal").Length)
        bytes
        (float bytes / 1e9)

    printfn "date: %s" (DateTime.UtcNow.ToString "yyyy-MM-dd HH:mm 'UTC'")

    let cat = sh "cat DIR/*.wal | wc -c"
    let b64 = sh "cat DIR/*.wal | base64 > /dev/null"

    let rows =
        [
            "wal verify DIR", cat, (wal, [ "verify"; dir ]), Some 2.0
            "wal check-dir DIR", cat, (wal, [ "check-dir"; dir ]), Some 2.0
            "wal dump --json DIR > /dev/null", b64, ("sh", [ "-c"; $"{wal} dump --json {dir} > /dev/null" ]), Some 2.0
            "wal dump DIR > /dev/null", cat, ("sh", [ "-c"; $"{wal} dump {dir} > /dev/null" ]), None
        ]
        |> List.map (fun (name, reference, tool, target) ->
            let r, t = paired reference tool
            name, r, t, target)

    printfn ""

    printfn
        "| tool | exit | seconds | CPU s | peak RSS MB | reference | its seconds | its CPU s | ratio | target | met? |"

    printfn "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"

    for command, (_, r, rCpu, _), (code, seconds, cpu, kb), target in rows do
        let mb = float kb / 1024.0
        let ratio = seconds / r
        // A `|` inside a cell would end it.
        let cell (text: string) = text.Replace("|", "\\|")

        let reference =
            if command.StartsWith "wal dump --json" then
                "cat DIR/*.wal | base64 > /dev/null"
            else
                "cat DIR/*.wal | wc -c"

        let targetText, met =
            match target with
            | Some t -> $"<= {t:F0}x, < 200 MB", (if ratio <= t && mb < 200.0 then "yes" else "no")
            | None -> "none", ""

        printfn
            "| `%s` | %d | %.2f | %.2f | %.0f | `%s` | %.2f | %.2f | %.2fx | %s | %s |"
            (cell command)
            code
            seconds
            cpu
            mb
            (cell reference)
            r
            rCpu
            ratio
            targetText
            met
finally
    if not keep && Directory.Exists dir then
        Directory.Delete(dir, true)
