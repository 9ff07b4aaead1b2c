/// The tools on logs of any size: ReadAll's survey (WalDirectory.Survey, then LogSurvey.Entries)
/// gives ReadAll's contents and errors while holding no entries, `wal dump --json` writes its
/// document as it reads (64-bit values as strings), and the tools run under a heap cap that a
/// whole-list ReadAll of the same log would exceed.
module Wal.Properties.BoundedToolsTests

open System
open System.Diagnostics
open System.IO
open System.Text
open System.Text.Json
open Expecto
open Wal
open Wal.Oracle
open Wal.Properties.Support
open Wal.Properties.LogFixtures
open Wal.Properties.CliRunner

/// A log raft could write, from `seed`: appends, overwrites above the commit in a new term,
/// snapshot records at the commit, on 2 KiB segments; then, for one seed in three, one byte
/// changed somewhere. Returns the options and the snapshots saved.
let private writeLog (seed: int) =
    let random = Random seed
    let fs, options = memoryOptions 2048L
    let terms = Collections.Generic.Dictionary<uint64, uint64>()
    let mutable snapshots = []

    do
        use wal = WriteAheadLog.Create(dir, mem "meta", options)
        let mutable last, term, commit = 0UL, 1UL, 0UL

        let save (first: uint64) (count: int) =
            let entries =
                [
                    for i in first .. first + uint64 count - 1UL -> Entry(term, i, mem $"{seed}-{term}-{i}")
                ]

            for e in entries do
                terms[e.Index] <- term

            last <- first + uint64 count - 1UL
            commit <- commit + uint64 (random.Next(int (last - commit) + 1))
            wal.Save(HardState(term, 1UL, commit), entries)

        for _ in 1 .. random.Next(1, 60) do
            match random.Next 8 with
            | 0 when last > commit ->
                // A new leader's entries replace a suffix above the commit.
                term <- term + 1UL
                save (commit + 1UL + uint64 (random.Next(int (last - commit)))) (random.Next(1, 6))
            | 1 when commit > 0UL ->
                let s = Snapshot(commit, terms[commit])
                wal.SaveSnapshot s
                snapshots <- s :: snapshots
            | _ -> save (last + 1UL) (random.Next(1, 6))

    if seed % 3 = 0 then
        let segments = segmentsOf fs
        let name = segments[random.Next segments.Length]
        let length = (fs.ReadAllBytes(at name)).Length
        flipByte fs (at name) (random.Next(min length 4096))

    options, snapshots

/// ReadAll's outcome, or the survey's, as one comparable value.
let private outcome (read: unit -> Result<ReadAllResult, WalException>) =
    match read () with
    | Ok r -> Ok(r.Metadata.ToArray(), r.State, List.ofSeq r.Entries)
    | Error e when e.Kind = WalErrorKind.SnapshotNotFound ->
        let r = e.Contents.Value
        Error(string e.Kind, Some(r.Metadata.ToArray(), r.State, List.ofSeq r.Entries))
    | Error e -> Error(string e.Kind, None)

let private readAll (options: WalOptions) (at: Snapshot) () =
    try
        Ok(readOnly options at)
    with :? WalException as e ->
        Error e

let private surveyed (options: WalOptions) (at: Snapshot) () =
    try
        let survey = WalDirectory.Survey(dir, at, options)
        let entries = List.ofSeq (survey.Entries())
        Expect.equal (uint64 entries.Length) survey.EntryCount "EntryCount counts the entries"
        let visited = ResizeArray()

        survey.VisitEntries(EntryVisitor(fun term index kind data -> visited.Add(term, index, kind, data.ToArray())))

        Expect.equal
            (List.ofSeq visited)
            (entries |> List.map (fun e -> e.Term, e.Index, e.Type, e.Data.ToArray()))
            "VisitEntries visits the entries Entries gives"

        let contents =
            ReadAllResult(survey.Metadata, survey.State, Collections.Generic.List(entries))

        if survey.SnapshotFound then
            Ok contents
        else
            Error(WalException(WalErrorKind.SnapshotNotFound, "", Contents = contents))
    with :? WalException as e ->
        Error e

let ``the survey and its entries are ReadAll's outcome`` (seed: int) =
    let options, snapshots = writeLog (abs seed)
    let missing = Snapshot(UInt64.MaxValue - 1UL, 1UL)

    for at in Snapshot.Zero :: missing :: snapshots do
        for options in [ options; lenient options ] do
            Expect.equal
                (outcome (surveyed options at))
                (outcome (readAll options at))
                $"seed {seed}, at {at.Index}:{at.Term}"

/// The survey keeps one cut per overwrite at most, and drops cuts a later, lower one covers.
let ``the survey holds the overwrites' cuts, not the entries`` () =
    let fs, options = memoryOptions 65536L

    do
        use wal = WriteAheadLog.Create(dir, mem "meta", options)
        wal.Save(HardState(1UL, 1UL, 0UL), entriesFrom 1UL 2000UL)
        // Three overwrites, each lower than the one before: only the last matters.
        for term, from in [ 2UL, 1500UL; 3UL, 1200UL; 4UL, 900UL ] do
            wal.Save(HardState(term, 1UL, 0UL), [ for i in from .. from + 9UL -> Entry(term, i, mem $"t{term}") ])

        wal.Save(HardState(4UL, 1UL, 0UL), [ for i in 910UL .. 3000UL -> Entry(4UL, i, mem "x") ])

    let survey = WalDirectory.Survey(dir, Snapshot.Zero, options)
    Expect.equal survey.Cuts 1 "one cut covers the others"
    Expect.equal survey.EntryCount 3000UL "entries 1..3000"
    let entries = List.ofSeq (survey.Entries())
    Expect.equal (entries |> List.map (fun e -> e.Index)) [ 1UL .. 3000UL ] "ReadAll's indexes"
    Expect.equal (entries |> List.map (fun e -> e.Term) |> List.distinct) [ 1UL; 4UL ] "terms 1 then 4"

/// A TextWriter that keeps only the size of the largest write and the number of writes.
type private WriteSizes() =
    inherit TextWriter()
    member val Largest = 0 with get, set
    member val Writes = 0 with get, set
    member val Chars = 0L with get, set
    override _.Encoding = Encoding.UTF8

    override this.Write(c: char) =
        this.Writes <- this.Writes + 1
        this.Largest <- max this.Largest 1
        this.Chars <- this.Chars + 1L

    override this.Write(buffer: char[], index: int, count: int) =
        this.Writes <- this.Writes + 1
        this.Largest <- max this.Largest count
        this.Chars <- this.Chars + int64 count

    override this.Write(text: string) =
        if not (isNull text) then
            this.Write(text.ToCharArray(), 0, text.Length)

let ``dump --json passes its document on in chunks as it reads`` () =
    use tmp = new TempDir()

    do
        use wal = WriteAheadLog.Create(tmp.Path, mem "meta")

        for first in 1UL .. 100UL .. 20000UL do
            wal.Save(
                HardState(1UL, 1UL, first),
                [ for i in first .. first + 99UL -> Entry(1UL, i, Array.create 100 7uy) ]
            )

    let sizes = new WriteSizes()
    let old = Console.Out
    Console.SetOut sizes

    let code =
        try
            Wal.Cli.Program.main [| "dump"; "--json"; tmp.Path |]
        finally
            Console.SetOut old

    Expect.equal code 0 "exit 0"
    // 20,000 entries of 100 bytes: over 3 MB of JSON, never more than a chunk in one write.
    Expect.isGreaterThan sizes.Chars 3_000_000L "the whole document"
    Expect.isLessThanOrEqual sizes.Largest (Wal.Cli.Output.chunkChars + 8192) "no write larger than a chunk"
    Expect.isGreaterThan sizes.Writes 40 "written a chunk at a time"

let ``ids above 2^53 are strings that round-trip exactly`` () =
    use tmp = new TempDir()
    let vote = 3319814642761637952UL
    let snapshot = Snapshot((1UL <<< 60), 9007199254740993UL)

    do
        use wal = WriteAheadLog.Create(tmp.Path, mem "meta")
        wal.SaveSnapshot snapshot

        wal.Save(
            HardState(9007199254740993UL, vote, snapshot.Index + 1UL),
            [ Entry(9007199254740993UL, snapshot.Index + 1UL, mem "x") ]
        )

    let code, out, err =
        wal
            [
                "dump"
                "--json"
                "--snapshot"
                $"{snapshot.Index}:{snapshot.Term}"
                tmp.Path
            ]

    Expect.equal (code, err) (0, "") "exit 0"
    use doc = JsonDocument.Parse out
    let root = doc.RootElement
    let text (e: JsonElement) (name: string) = e.GetProperty(name)

    for name, value in
        [
            "snapIndex", snapshot.Index
            "snapTerm", snapshot.Term
            "term", 9007199254740993UL
            "vote", vote
        ] do
        Expect.equal (text root name).ValueKind JsonValueKind.String $"{name} is a string"
        Expect.equal ((text root name).GetString()) (string value) $"{name} exactly"

    let entry = root.GetProperty("entries")[0]
    Expect.equal ((text entry "index").GetString()) "1152921504606846977" "the entry's index exactly"
    Expect.equal ((text entry "term").GetString()) "9007199254740993" "the entry's term exactly"
    Expect.equal ((text entry "type").GetInt32()) 0 "type stays a number"
    // The schema's reader takes the strings, and the numbers older writers wrote.
    match ReadAllJson.parse out with
    | Ok dump ->
        Expect.equal dump.Vote vote "parsed vote"
        Expect.equal (dump.Entries |> List.map (fun e -> e.Index)) [ snapshot.Index + 1UL ] "parsed index"

        let asNumbers =
            out.Replace($"\"{vote}\"", string vote).Replace("\"1152921504606846977\"", "1152921504606846977")

        match ReadAllJson.parse asNumbers with
        | Ok old -> Expect.equal old dump "numbers read as the strings do"
        | Error e -> failtest e
    | Error e -> failtest e

/// Entries 1..count of 90-byte payloads, 1,000 a Save, on 4 MB segments.
let private bigLog (path: string) (count: int) =
    use wal =
        WriteAheadLog.Create(path, mem "meta", WalOptions(SegmentSizeBytes = 4_000_000L))

    for first in 1..1000..count do
        wal.Save(
            HardState(1UL, 1UL, uint64 first),
            [
                for i in first .. min count (first + 999) -> Entry(1UL, uint64 i, Array.create 90 (byte i))
            ]
        )

/// `wal args` as a child process whose managed heap is capped at `heapBytes`: exit code, and
/// the stdout's length and last line (the output is read as it comes, never kept whole).
let private walCapped (heapBytes: int64) (args: string list) =
    let info =
        ProcessStartInfo("dotnet", Path.Combine(testDirectory, "wal.dll") :: args)

    info.RedirectStandardOutput <- true
    info.RedirectStandardError <- true
    info.UseShellExecute <- false
    info.Environment["DOTNET_GCHeapHardLimit"] <- $"0x{heapBytes:x}"
    use proc = Process.Start info
    let err = proc.StandardError.ReadToEndAsync()
    let mutable chars = 0L
    let mutable last = ""
    let mutable line = proc.StandardOutput.ReadLine()

    while not (isNull line) do
        chars <- chars + int64 line.Length
        last <- line
        line <- proc.StandardOutput.ReadLine()

    proc.WaitForExit()
    proc.ExitCode, chars, last, err.Result

let ``the tools read a log whose entries exceed their heap`` () =
    use tmp = new TempDir()
    // 300,000 entries: about 40 MB on disk, and a 58 MB JSON document; a ReadAll holding them
    // all needs several times the 48 MB heap the tools are given.
    bigLog tmp.Path 300_000
    let cap = 48L * 1024L * 1024L

    let code, chars, _, err = walCapped cap [ "dump"; "--json"; tmp.Path ]
    Expect.equal (code, err) (0, "") "dump --json"
    Expect.isGreaterThan chars 50_000_000L "the whole document"

    let code, _, last, err = walCapped cap [ "dump"; tmp.Path ]
    Expect.equal (code, err) (0, "") "dump"
    Expect.stringContains last "300000 entries (1..300000)" "the summary"

    let code, _, last, err = walCapped cap [ "verify"; tmp.Path ]
    Expect.equal (code, err) (0, "") "verify"

    let code, _, last, err = walCapped cap [ "check-dir"; tmp.Path ]
    Expect.equal (code, err) (0, "") "check-dir"
    Expect.stringContains last "0 broken invariants" "check-dir's verdict"

/// This file's tests.
let tests =
    testList
        "BoundedToolsTests"
        [
            testPropertyWithConfig
                (fsCheck 200 [])
                "the survey and its entries are ReadAll's outcome"
                ``the survey and its entries are ReadAll's outcome``
            testCase
                "the survey holds the overwrites' cuts, not the entries"
                ``the survey holds the overwrites' cuts, not the entries``
            testCase
                "dump --json passes its document on in chunks as it reads"
                ``dump --json passes its document on in chunks as it reads``
            testCase
                "ids above 2^53 are strings that round-trip exactly"
                ``ids above 2^53 are strings that round-trip exactly``
            testCase
                "the tools read a log whose entries exceed their heap"
                ``the tools read a log whose entries exceed their heap``
        ]
