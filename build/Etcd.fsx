/// The etcd peer: etcd 3.4's own wal package (Debian's golang-etcd-server-dev), driven by
/// interop/etcd/peer so the Interop tests can compare the engine with etcd itself; and the
/// corpus of WALs etcd wrote, with its verdicts, for machines without Go.
module Etcd

#load "Shell.fsx"
#load "Debian.fsx"

open System
open System.Diagnostics
open System.IO
open Shell

let peerBinary =
    Path.GetFullPath(Path.Combine("interop", "etcd", "bin", "etcd-peer"))

let etcdWalSource = "/usr/share/gocode/src/go.etcd.io/etcd/wal/wal.go"

/// Go and etcd's source, from Debian, when missing: as root directly, otherwise through sudo.
let installGoAndEtcd () =
    Debian.ensure
        [
            if not (onPath "go") then
                "golang-go"
            if not (File.Exists etcdWalSource) then
                "golang-etcd-server-dev"
        ]

/// Builds interop/etcd/peer in GOPATH mode against Debian's etcd source (no download).
let buildPeer () =
    match installGoAndEtcd () with
    | Error reason -> Error reason
    | Ok() ->
        let gopath = Path.GetFullPath(Path.Combine("interop", "etcd", ".gopath"))
        let link = Path.Combine(gopath, "src", "etcd-peer")
        Directory.CreateDirectory(Path.GetDirectoryName link) |> ignore

        if not (Directory.Exists link) then
            Directory.CreateSymbolicLink(link, Path.GetFullPath(Path.Combine("interop", "etcd", "peer")))
            |> ignore

        printfn "> go build -o %s (GOPATH=%s:/usr/share/gocode, GO111MODULE=off)" peerBinary gopath
        stdout.Flush()

        let info =
            ProcessStartInfo("go", [ "build"; "-o"; peerBinary; "." ], UseShellExecute = false, WorkingDirectory = link)

        info.Environment["GO111MODULE"] <- "off"
        info.Environment["GOPATH"] <- gopath + ":/usr/share/gocode"
        info.Environment["GOFLAGS"] <- ""
        use proc = Process.Start info
        proc.WaitForExit()

        if proc.ExitCode = 0 then
            Ok peerBinary
        else
            Error $"go build of interop/etcd/peer failed ({proc.ExitCode})"

/// The `peer` target.
let peer () =
    match buildPeer () with
    | Ok path -> printfn "etcd peer: %s" path
    | Error reason -> fail reason

/// Output of the peer, or the script stops.
let peerOutput (args: string list) =
    let info =
        ProcessStartInfo(peerBinary, args, UseShellExecute = false, RedirectStandardOutput = true)

    use proc = Process.Start info
    let out = proc.StandardOutput.ReadToEnd()
    proc.WaitForExit()

    if proc.ExitCode <> 0 then
        fail $"""etcd-peer {String.Join(" ", args)} failed"""

    out.Trim()

/// Regenerates tests/Wal.Properties/corpus/etcd-3.4 from interop/etcd/corpus/*.json: for each
/// script, the WAL etcd writes and etcd's verdicts on it (expected.txt), so the compatibility
/// tests run where there is no Go.
let corpus () =
    match buildPeer () with
    | Error reason -> fail reason
    | Ok _ -> ()

    let target = Path.Combine("tests", "Wal.Properties", "corpus", "etcd-3.4")

    if Directory.Exists target then
        Directory.Delete(target, true)

    let scratch = Path.Combine(Path.GetTempPath(), $"wal-corpus-{Guid.NewGuid():N}")

    let copyOf (wal: string) (name: string) =
        let dir = Path.Combine(scratch, name)
        Directory.CreateDirectory dir |> ignore

        for f in Directory.GetFiles wal do
            File.Copy(f, Path.Combine(dir, Path.GetFileName f))

        dir

    for script in
        Directory.GetFiles(Path.Combine("interop", "etcd", "corpus"), "*.json")
        |> Array.sort do
        let name = Path.GetFileNameWithoutExtension script
        let wal = Path.Combine(target, name, "wal")
        peerOutput [ "write"; wal; script ] |> ignore

        use doc = Text.Json.JsonDocument.Parse(File.ReadAllText script)

        let reads =
            [
                for r in doc.RootElement.GetProperty("reads").EnumerateArray() -> r.GetString()
            ]

        let lines =
            [
                for at in reads do
                    $"read {at} " + peerOutput [ "read"; copyOf wal $"{name}-read-{at}"; at ]

                    $"open {at} "
                    + peerOutput [ "read"; copyOf wal $"{name}-open-{at}"; at; "write" ]
                let repaired = copyOf wal $"{name}-repair"
                "repair - " + peerOutput [ "repair"; repaired ]
                "repaired-read 0:0 " + peerOutput [ "read"; repaired; "0:0" ]
            ]

        File.Copy(script, Path.Combine(target, name, "script.json"))
        File.WriteAllLines(Path.Combine(target, name, "expected.txt"), lines)
        printfn "%s: %d segments, %d verdicts" name (Directory.GetFiles wal).Length lines.Length

    Directory.Delete(scratch, true)
