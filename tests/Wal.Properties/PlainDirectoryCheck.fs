/// Wal.Model's DirectoryCheck as it was written first, for plainness: an immutable state copied per
/// record, terms in a list, each record's data copied. The model's walk was made lean (mutable
/// state private to `check`, records visited in place) so that `wal check-dir` keeps pace with
/// `cat` on a 1 GB log; this copy is the judge that the lean walk says exactly what the plain
/// one said (SegmentsProperties). Both read the messages inside records with Wal.Model.Protobuf,
/// which MessageDecodingTests holds to gogo's verdicts.
module Wal.Properties.PlainDirectoryCheck

open System
open Wal.Model
open Wal.Model.Segments
open Wal.Model.DirectoryCheck

let private tryName (name: string) =
    let hex (s: string) =
        s.Length = 16 && s |> Seq.forall Uri.IsHexDigit

    if
        name.Length = 37
        && name.EndsWith ".wal"
        && name[16] = '-'
        && hex name[0..15]
        && hex name[17..32]
    then
        Some(Convert.ToUInt64(name[0..15], 16), Convert.ToUInt64(name[17..32], 16))
    else
        None

/// The log's terms as raft sees it after overwrites: runs of consecutive indexes with one term,
/// newest first, so that memory grows with term changes and overwrites, not with entries.
type private TermRun =
    {
        First: uint64
        Last: uint64
        Term: uint64
    }

/// The term of `index` in the runs, if the log holds it.
let private termAt (index: uint64) (runs: TermRun list) =
    runs
    |> List.tryFind (fun r -> r.First <= index)
    |> Option.bind (fun r -> if index <= r.Last then Some r.Term else None)

/// The runs with every index from `index` on dropped, then `index` added with `term`.
let private setTerm (index: uint64) (term: uint64) (runs: TermRun list) =
    let kept =
        runs
        |> List.skipWhile (fun r -> r.First >= index)
        |> function
            | r :: rest when r.Last >= index -> { r with Last = index - 1UL } :: rest
            | rest -> rest

    match kept with
    | r :: rest when r.Term = term && r.Last + 1UL = index -> { r with Last = index } :: rest
    | _ ->
        {
            First = index
            Last = index
            Term = term
        }
        :: kept

/// What check-dir knows after the records so far.
type private Walk =
    {
        Metadata: byte[] option
        /// The log as raft sees it, after overwrites.
        Terms: TermRun list
        LastEntry: uint64 option
        StateTerm: uint64
        StateVote: uint64
        StateCommit: uint64
        Segment: string
        /// Newest first.
        Problems: Problem list
    }

/// What one record says, checked against the records before it: metadata, entries' terms and
/// indexes against the segment names, hard states' terms and commits. `named` gives each
/// segment's named index; `firstIndex` is the first segment's (entries before it may have been
/// released and removed).
let private walk (named: Map<string, uint64>) (firstIndex: uint64) (w: Walk) (r: RawRecord) : Walk =
    let add p (w: Walk) = { w with Problems = p :: w.Problems }
    // Before any entry, the log reaches as far as the first segment's name says.
    let known (w: Walk) =
        defaultArg w.LastEntry (firstIndex - min firstIndex 1UL)

    let w =
        if r.Segment = w.Segment then
            w
        else
            let w = { w with Segment = r.Segment }
            let index = named[r.Segment]

            match w.LastEntry with
            | _ when index > known w + 1UL -> add (NameIndexGap(r.Segment, index, known w)) w
            | Some last when index < last + 1UL -> add (NameIndexBehind(r.Segment, index, last)) w
            | _ -> w

    let undecodable what =
        add (UndecodablePayload(r.Segment, r.Offset, what)) w

    match r.Type with
    | t when t = RecordType.crc -> w
    | t when t = RecordType.metadata ->
        match w.Metadata with
        | Some m when r.Data.Length > 0 && m <> r.Data -> add (MetadataConflict(r.Segment, r.Offset)) w
        | None when r.Data.Length > 0 -> { w with Metadata = Some r.Data }
        | _ -> w
    | t when t = RecordType.entry ->
        match Protobuf.entry r.Data 0 r.Data.Length with
        | ValueNone -> undecodable "an entry record's data is not a raftpb.Entry"
        | ValueSome { F1 = kind; F2 = term; F3 = index } ->
            // An overwrite may bring a lower term than the entry it replaces (raft allows it), so
            // only the entry before is compared.
            let w =
                match termAt (index - 1UL) w.Terms with
                | Some before when term < before ->
                    add (EntryTermWentBackwards(r.Segment, r.Offset, index, term, before)) w
                | _ -> w

            let w =
                if kind > 2UL then
                    add (UnknownEntryType(r.Segment, r.Offset, index, kind)) w
                else
                    w

            let w =
                if index <= known w && index <= w.StateCommit then
                    add (CommittedEntryReplaced(r.Segment, r.Offset, index, w.StateCommit)) w
                else
                    w

            // An overwrite drops the entries from its index on; an append (the usual case) drops nothing.
            { w with
                Terms = setTerm index term w.Terms
                LastEntry = Some index
            }
    | t when t = RecordType.state ->
        match Protobuf.hardState r.Data 0 r.Data.Length with
        | ValueNone -> undecodable "a state record's data is not a raftpb.HardState"
        | ValueSome { F1 = term; F2 = vote; F3 = commit } ->

            let last = max (firstIndex - min firstIndex 1UL) (defaultArg w.LastEntry 0UL)

            let w =
                if term < w.StateTerm then
                    add (StateTermWentBackwards(r.Segment, r.Offset, term, w.StateTerm)) w
                else
                    w

            let w =
                if commit > last && w.LastEntry.IsSome then
                    add (CommitBeyondLastEntry(r.Segment, r.Offset, commit, last)) w
                else
                    w

            let w =
                if term = w.StateTerm && w.StateVote <> 0UL && vote <> w.StateVote then
                    add (VoteChangedWithinTerm(r.Segment, r.Offset, term, vote, w.StateVote)) w
                else
                    w

            { w with
                StateTerm = max w.StateTerm term
                StateVote = (if term >= w.StateTerm then vote else w.StateVote)
                StateCommit = commit
            }
    | t when t = RecordType.snapshot ->
        match Protobuf.snapshot r.Data 0 r.Data.Length with
        | ValueNone -> undecodable "a snapshot record's data is not a walpb.Snapshot"
        // Raft holds every index up to a snapshot's, the last at its term.
        | ValueSome { F1 = index; F2 = term } when
            index > 0UL
            && (match w.LastEntry with
                | Some last -> index > last
                | None -> true)
            ->
            { w with
                Terms = setTerm index term w.Terms
                LastEntry = Some index
            }
        | ValueSome _ -> w
    | t -> add (UnknownRecordType(r.Segment, r.Offset, t)) w

/// The largest segment check-dir reads, in bytes.
let private maxSegmentBytes = Wal.Model.DirectoryCheck.maxSegmentBytes

/// Every invariant a WAL directory breaks, in the order met: the files (names given, segment
/// contents read on demand), sequence numbers, the records (the CRC chain, torn or corrupt
/// records), and what the records say (metadata, entries' terms and indexes against the segment
/// names, hard states' terms and commits).
let check (names: string list) (size: string -> int64) (read: string -> byte[]) : Problem list =
    let segments =
        names
        |> List.choose (fun n -> tryName n |> Option.map (fun (s, i) -> n, s, i))
        |> List.sortBy (fun (_, s, _) -> s)

    let files =
        [
            for n in List.sort names do
                if n.EndsWith ".wal.broken" then
                    LeftByRepair n
                elif (tryName n).IsNone && not (n.EndsWith ".tmp") then
                    ForeignFile n
        ]

    let gaps =
        segments
        |> List.pairwise
        |> List.choose (fun ((a, sa, _), (b, sb, _)) -> if sb <> sa + 1UL then Some(SequenceGap(a, b)) else None)

    let tooLarge =
        segments
        |> List.choose (fun (n, _, _) ->
            let s = size n in

            if s > maxSegmentBytes then
                Some(TooLargeToCheck(n, s))
            else
                None)

    if segments.IsEmpty then
        files @ [ NoSegments ]
    elif not tooLarge.IsEmpty then
        files @ gaps @ tooLarge
    else
        let named = segments |> List.map (fun (n, _, i) -> n, i) |> Map.ofList
        let _, _, firstIndex = segments.Head

        let start =
            {
                Metadata = None
                Terms = []
                LastEntry = None
                StateTerm = 0UL
                StateVote = 0UL
                StateCommit = 0UL
                Segment = ""
                Problems = []
            }

        let walked, stopped =
            fold (walk named firstIndex) start [ for n, _, _ in segments -> n, (fun () -> read n) ]

        let stop =
            match stopped with
            | CleanEnd -> []
            | Torn(s, o) -> [ TornRecord(s, o) ]
            | CrcMismatch(s, o) -> [ CrcChainBroken(s, o) ]
            | Corrupt(s, o) -> [ CorruptRecord(s, o) ]
            | TooLarge(s, o) -> [ ImpossibleLength(s, o) ]

        files @ gaps @ List.rev walked.Problems @ stop
