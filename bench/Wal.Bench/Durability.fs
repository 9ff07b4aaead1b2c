/// Each contestant's durability as the kernel sees it: its W1 run under `strace -f`, counting the
/// calls that make data durable (fsync, fdatasync, msync, sync_file_range, and files opened with
/// O_DSYNC, O_SYNC or O_DIRECT). Two runs (a few Saves and twice as many) and their difference
/// per Save, so that what creating the log costs once drops out.
[<RequireQualifiedAccess>]
module Wal.Bench.Durability

open System
open System.Diagnostics
open System.IO
open System.Text.RegularExpressions

/// Sync calls per Save, by name ("fdatasync", ...), and files opened with a durability flag
/// (by flag: "O_DSYNC", ...), which a log opens once, so they count as they are.
type Counts =
    {
        PerSave: Map<string, float>
        /// Per flag: files opened with it in the short run and in the long run.
        Opens: Map<string, int * int>
    }

let private traced =
    "fsync,fdatasync,msync,sync_file_range,open,openat,io_submit,io_uring_enter"

/// Counts in one strace output file.
let private count (file: string) =
    let calls = Collections.Generic.Dictionary<string, int>()

    let add name =
        calls[name] <-
            (match calls.TryGetValue name with
             | true, n -> n
             | _ -> 0)
            + 1

    for line in File.ReadLines file do
        let m = Regex.Match(line, @"^(?:\[pid\s+\d+\]\s*)?(?:\d+\s+)?(\w+)\(")

        if m.Success then
            match m.Groups[1].Value with
            | "open"
            | "openat" ->
                // Only the bench's own files count; O_DIRECT also shows as the flag name.
                if line.Contains "wal-bench-" then
                    for flag in [ "O_DSYNC"; "O_SYNC"; "O_DIRECT" ] do
                        if Regex.IsMatch(line, $@"\b{flag}\b") then
                            add $"open {flag}"
            | name -> add name

    calls

/// The strace command for a contestant's run of `saves` Saves of W1.
let private traceOnce (root: string) (c: Contestant) (w: Workload) (bytesPerSave: int) (saves: int) =
    let dir = Contestant.scratch c
    let output = Path.GetTempFileName()

    try
        let w = { w with Saves = saves }
        let exe, args = Contestant.command root c dir w bytesPerSave 0 false

        let info =
            ProcessStartInfo("strace", [ "-f"; "-qq"; "-e"; $"trace={traced}"; "-o"; output; exe ] @ args)

        info.RedirectStandardOutput <- true
        info.RedirectStandardError <- true
        use proc = Process.Start info
        proc.StandardOutput.ReadToEnd() |> ignore
        proc.StandardError.ReadToEnd() |> ignore
        proc.WaitForExit()

        if proc.ExitCode <> 0 then
            failwith $"strace of {Contestant.key c} failed ({proc.ExitCode})"

        count output
    finally
        File.Delete output

        if Directory.Exists dir then
            Directory.Delete(dir, true)

/// Whether strace is on the PATH (build/Debian.fsx installs it for the tests).
let available () =
    Environment.GetEnvironmentVariable("PATH").Split(':')
    |> Array.exists (fun d -> File.Exists(Path.Combine(d, "strace")))

/// Durability-relevant calls per Save of w (its entries per Save and bytes), from a run of
/// `saves` Saves and one of 2 x `saves`.
let measure (root: string) (c: Contestant) (w: Workload) (bytesPerSave: int) (saves: int) : Counts =
    let one = traceOnce root c w bytesPerSave saves
    let two = traceOnce root c w bytesPerSave (2 * saves)

    {
        PerSave =
            [
                for KeyValue(name, n) in two do
                    if name <> "open" && name <> "openat" && not (name.StartsWith "open ") then
                        let before =
                            match one.TryGetValue name with
                            | true, m -> m
                            | _ -> 0

                        name, float (n - before) / float saves
            ]
            |> List.filter (fun (_, perSave) -> perSave > 0.0)
            |> Map.ofList
        Opens =
            [
                for KeyValue(name, n) in two do
                    if name.StartsWith "open " then
                        let before =
                            match one.TryGetValue name with
                            | true, m -> m
                            | _ -> 0

                        name.Substring 5, (before, n)
            ]
            |> Map.ofList
    }

/// The table's cell: "fdatasync 1.00/Save" and the like, files opened with a flag in the short
/// and the long run ("O_SYNC opens 21/41": one per commit), or "nothing" when nothing makes
/// data durable.
let describe (counts: Counts) =
    let syncs =
        counts.PerSave
        |> Map.toList
        |> List.map (fun (name, perSave) -> $"%s{name} %.2f{perSave}/Save")

    let opens =
        counts.Opens
        |> Map.toList
        |> List.map (fun (flag, (short, long)) -> $"%s{flag} opens %d{short}/%d{long}")

    match syncs @ opens with
    | [] -> "nothing"
    | cells -> String.concat ", " cells
