/// The NuGet feed, taken from the machine's NuGet configuration and never written into the
/// repository (paket.dependencies and paket.lock say %NUGET_SOURCE%); restoring and building.
module Feed

#load "Shell.fsx"

open System
open System.Diagnostics
open System.IO
open System.Text.RegularExpressions
open Shell

let feedVariable = "NUGET_SOURCE"
let feedPlaceholder = "%" + feedVariable + "%"

/// The first enabled source in `dotnet nuget list source --format short` (lines like `E https://host/v3/index.json`).
let firstEnabledSource () =
    let args = [ "nuget"; "list"; "source"; "--format"; "short" ]
    printfn "> dotnet %s" (String.concat " " args)

    use proc =
        Process.Start(ProcessStartInfo("dotnet", args, UseShellExecute = false, RedirectStandardOutput = true))

    let listing = proc.StandardOutput.ReadToEnd()
    proc.WaitForExit()

    if proc.ExitCode <> 0 then
        exit proc.ExitCode

    listing.Split('\n')
    |> Array.tryPick (fun line ->
        match line.Trim().Split(' ', 2, StringSplitOptions.RemoveEmptyEntries) with
        | [| flags; url |] when flags.StartsWith 'E' && Seq.forall Char.IsUpper flags -> Some(url.Trim())
        | _ -> None)

/// Sets NUGET_SOURCE for every child process, unless the caller already did.
let ensureFeed () =
    if String.IsNullOrEmpty(Environment.GetEnvironmentVariable feedVariable) then
        match firstEnabledSource () with
        | Some url ->
            Environment.SetEnvironmentVariable(feedVariable, url)
            printfn "%s set from the first enabled NuGet source" feedVariable
        | None -> fail $"{feedVariable} is unset and the NuGet configuration has no enabled source"

/// Turns every `remote: <feed url>` line Paket wrote into paket.lock back into `remote: %NUGET_SOURCE%`.
let restoreLockPlaceholder () =
    let feed = Environment.GetEnvironmentVariable feedVariable
    let text = File.ReadAllText "paket.lock"
    let pattern = @"(?m)^(\s*remote:[ \t]*)" + Regex.Escape feed + @"[ \t]*(?=\r?$)"
    let placeheld = Regex.Replace(text, pattern, "${1}" + feedPlaceholder)

    if placeheld <> text then
        File.WriteAllText("paket.lock", placeheld)
        printfn "paket.lock: the feed's URL is replaced by %s again" feedPlaceholder

/// Restores the dotnet tools and the Paket packages.
let restore () =
    ensureFeed ()
    dotnet [ "tool"; "restore" ]
    dotnet [ "paket"; "restore" ]

/// `dotnet paket install` or `update`; paket.lock gets its placeholder back even if Paket fails.
let paket command =
    ensureFeed ()
    dotnet [ "tool"; "restore" ]
    let code = exec "dotnet" [ "paket"; command ]
    restoreLockPlaceholder ()

    if code <> 0 then
        exit code

/// Restores, then builds Wal.sln in Release.
let build () =
    restore ()
    dotnet [ "build"; "Wal.sln"; "-c"; "Release" ]
