/// `wal crash-test` on a table of drivers with a bounded budget (docs/crash-test.md): each row is
/// a driver, the options it runs with and the exit code it must give (0: no divergence; 1: its
/// planted bug is caught). Prints each one's crash states per second; the `test` target runs it
/// after the Expecto suites, so CI does.
module CrashTest

#load "Shell.fsx"

open System
open System.Diagnostics
open System.IO
open Shell

/// The CLI as `dotnet build` leaves it.
let wal = Path.Combine("src", "Wal.Cli", "bin", "Release", "net10.0", "wal.dll")

/// One driver to crash-test.
type Row =
    {
        Name: string
        /// Exit codes `wal crash-test` may give: 0 passes, 1 a divergence (a planted bug, or a
        /// finding in a library under test, whose report is the point); never 2.
        Expect: int list
        /// Options before `--`, after the budget.
        Options: string list
        /// The driver's command, after `--`.
        Command: string list
    }

let private row name expect options command =
    {
        Name = name
        Expect = [ expect ]
        Options = options
        Command = command
    }

/// A third-party implementation: what crash-test finds is reported, divergence or not; a
/// breach of the protocol (exit 2) fails.
let private report name options command =
    {
        Name = name
        Expect = [ 0; 1 ]
        Options = options
        Command = command
    }

let private engine = [ "dotnet"; wal; "driver" ]
let private naive = [ "python3"; Path.Combine("examples", "drivers", "naive.py") ]
let private etcd = [ Path.Combine("interop", "etcd", "bin", "etcd-peer"); "driver" ]

let private library (name: string) (dll: string) =
    [ "dotnet"; Path.Combine("interop", name, "bin", "Release", "net10.0", dll) ]

/// The budget every row gets; a row's own `--sequences` or `--states` replaces it.
let budget = [ "--sequences", "4"; "--states", "400" ]

let private budgetFor (r: Row) =
    [
        for option, value in budget do
            if not (List.contains option r.Options) then
                yield! [ option; value ]
    ]

/// The drivers, one line each.
let drivers =
    [
        row "engine" 0 [] engine
        row "engine, etcd's exact rule" 0 [ "--etcd-exact" ] engine
        row "engine, injected faults" 0 [ "--faults" ] engine
        row "naive.py" 0 [] naive
        row "naive.py, injected faults" 0 [ "--faults" ] naive
        row "naive.py --bug no-fsync-on-term-change" 1 [] (naive @ [ "--bug"; "no-fsync-on-term-change" ])
        row
            "naive.py --bug ack-after-fsync-error"
            1
            [ "--faults"; "--sequences"; "8" ]
            (naive @ [ "--bug"; "ack-after-fsync-error" ])
        report "etcd 3.4 wal (peer)" [] etcd
        report "FasterLog 2.6.5" [] (library "faster" "faster-driver.dll")
        report
            "FasterLog 2.6.5, directories synced"
            []
            (library "faster" "faster-driver.dll" @ [ "--sync-directories" ])
        report "DotNext 6.12.0 WriteAheadLog" [] (library "dotnext" "dotnext-driver.dll")
    ]

/// What one row printed and did.
type Outcome =
    {
        Row: Row
        Code: int
        States: string
        PerSecond: string
        Seconds: float
    }

let private runRow (r: Row) =
    let args = [ wal; "crash-test" ] @ budgetFor r @ r.Options @ [ "--" ] @ r.Command
    printfn "> dotnet %s" (args |> List.map quote |> String.concat " ")

    let info =
        ProcessStartInfo("dotnet", RedirectStandardOutput = true, UseShellExecute = false)

    for a in args do
        info.ArgumentList.Add a

    let clock = Stopwatch.StartNew()
    use p = Process.Start info
    let mutable states = "?"
    let mutable perSecond = "?"

    let mutable line = p.StandardOutput.ReadLine()

    while not (isNull line) do
        printfn "  %s" line

        if line.StartsWith "crash states:" then
            states <- line.Substring("crash states:".Length).Trim()
        elif line.StartsWith "states/second:" then
            perSecond <- line.Substring("states/second:".Length).Trim()

        line <- p.StandardOutput.ReadLine()

    p.WaitForExit()

    {
        Row = r
        Code = p.ExitCode
        States = states
        PerSecond = perSecond
        Seconds = clock.Elapsed.TotalSeconds
    }

/// Runs every row; prints the table; returns how many gave the exit code expected and how many not.
let crashTests () =
    // The recordings need strace, naive.py needs python3 (the test target installs both).
    let clock = Stopwatch.StartNew()
    let outcomes = drivers |> List.map runRow
    printfn "\ncrash-test (budget: %s)" (budget |> List.map (fun (o, v) -> $"{o} {v}") |> String.concat " ")
    printfn "  %-45s %6s %12s %8s  %s" "driver" "exit" "crash states" "states/s" "wall"

    for o in outcomes do
        let verdict =
            if List.contains o.Code o.Row.Expect then
                ""
            else
                let expected = o.Row.Expect |> List.map string |> String.concat " or "
                $"  FAILED: expected exit {expected}"

        printfn "  %-45s %6d %12s %8s  %.0f s%s" o.Row.Name o.Code o.States o.PerSecond o.Seconds verdict

    printfn "  the crash-test target took %.0f s" clock.Elapsed.TotalSeconds

    let failed =
        outcomes
        |> List.filter (fun o -> not (List.contains o.Code o.Row.Expect))
        |> List.length

    outcomes.Length - failed, failed
