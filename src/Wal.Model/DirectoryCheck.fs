/// The invariants of an etcd-format WAL directory that `wal check-dir` reports: the files and
/// their sequence numbers, the records as the reference decoder (Segments) reads them, and what
/// the records say.
module Wal.Model.DirectoryCheck

open System
open System.Buffers.Binary
open System.Numerics
open Wal.Model.Segments

/// What a directory entry is: the WAL reads only regular files.
type EntryKind =
    | RegularFile
    /// A symbolic link, FIFO, device, socket or directory; `what` names it ("a FIFO").
    | NotRegular of what: string

/// Something wrong, or odd, in a WAL directory, and where it stands.
type Problem =
    /// A name the WAL takes for a segment, on something that is not a regular file.
    | NotRegularFile of name: string * what: string
    /// The directory holds no segment file.
    | NoSegments
    /// A file that is not a segment (a warning: the WAL ignores it).
    | ForeignFile of name: string
    /// A *.wal.broken copy a Repair kept (a warning).
    | LeftByRepair of name: string
    /// Segment sequence numbers skip one.
    | SequenceGap of before: string * after: string
    /// A segment larger than check-dir reads.
    | TooLargeToCheck of name: string * bytes: int64
    /// The last segment ends in a torn or truncated record.
    | TornRecord of segment: string * offset: int64
    /// A record's CRC does not continue the chain.
    | CrcChainBroken of segment: string * offset: int64
    /// A record that cannot be decoded.
    | CorruptRecord of segment: string * offset: int64
    /// A length word claiming 10 MiB or more.
    | ImpossibleLength of segment: string * offset: int64
    /// A record type outside 1-5.
    | UnknownRecordType of segment: string * offset: int64 * recordType: int64
    /// An entry, state or snapshot record whose data is not its message.
    | UndecodablePayload of segment: string * offset: int64 * message: string
    /// Metadata that differs from the metadata before it.
    | MetadataConflict of segment: string * offset: int64
    /// A segment named for entries after a gap: entries are missing before it.
    | NameIndexGap of segment: string * named: uint64 * lastEntry: uint64
    /// A segment named for entries below the last one before it (a warning: an overwrite).
    | NameIndexBehind of segment: string * named: uint64 * lastEntry: uint64
    /// A hard state commits past the last entry written.
    | CommitBeyondLastEntry of segment: string * offset: int64 * commit: uint64 * lastIndex: uint64
    /// An entry's term is below the term before it (or below the entry it replaces).
    | EntryTermWentBackwards of segment: string * offset: int64 * index: uint64 * term: uint64 * before: uint64
    /// A hard state's term is below an earlier hard state's.
    | StateTermWentBackwards of segment: string * offset: int64 * term: uint64 * before: uint64
    /// An entry whose type is not one of raft's (0, 1, 2): a flipped type byte reads this way.
    | UnknownEntryType of segment: string * offset: int64 * index: uint64 * entryType: uint64
    /// An entry replacing one at or below the commit index raft had saved before it.
    | CommittedEntryReplaced of segment: string * offset: int64 * index: uint64 * commit: uint64
    /// A hard state changing a vote already cast in the same term.
    | VoteChangedWithinTerm of segment: string * offset: int64 * term: uint64 * vote: uint64 * before: uint64

/// Whether a problem is only worth knowing (a stray file, an overwrite's cut) rather than a
/// broken invariant.
let isWarning (problem: Problem) =
    match problem with
    | ForeignFile _
    | LeftByRepair _
    | NameIndexBehind _ -> true
    | _ -> false

/// One line per problem.
let describe (problem: Problem) =
    match problem with
    | NotRegularFile(name, what) -> $"{name}: {what}, not a regular file; the WAL refuses to open it"
    | NoSegments -> "no segment files (%016x-%016x.wal): not a WAL directory"
    | ForeignFile name -> $"{name}: not a segment; the WAL ignores it"
    | LeftByRepair name -> $"{name}: a copy a Repair kept of a segment it cut"
    | SequenceGap(before, after) -> $"{before} is followed by {after}: a sequence number is missing"
    | TooLargeToCheck(name, bytes) -> $"{name}: {bytes} bytes, more than check-dir reads of one segment"
    | TornRecord(s, o) -> $"{s} at {o}: a torn or truncated last record (Repair can cut it off)"
    | CrcChainBroken(s, o) -> $"{s} at {o}: the CRC chain breaks (corruption)"
    | CorruptRecord(s, o) -> $"{s} at {o}: a record that cannot be decoded (corruption)"
    | ImpossibleLength(s, o) -> $"{s} at {o}: a length word claiming 10 MiB or more (corruption)"
    | UnknownRecordType(s, o, t) -> $"{s} at {o}: unknown record type {t}"
    | UndecodablePayload(s, o, what) -> $"{s} at {o}: {what}"
    | MetadataConflict(s, o) -> $"{s} at {o}: metadata differs from the metadata before it"
    | NameIndexGap(s, named, last) ->
        $"{s}: named for entries from {named}, but the last entry before it is {last}: entries are missing"
    | NameIndexBehind(s, named, last) -> $"{s}: named for entries from {named}, though entries up to {last} precede it"
    | CommitBeyondLastEntry(s, o, c, last) -> $"{s} at {o}: a hard state commits {c}, beyond the last entry {last}"
    | EntryTermWentBackwards(s, o, i, t, before) -> $"{s} at {o}: entry {i} has term {t}, below term {before} before it"
    | StateTermWentBackwards(s, o, t, before) -> $"{s} at {o}: a hard state's term {t} is below an earlier {before}"
    | UnknownEntryType(s, o, i, t) -> $"{s} at {o}: entry {i} has type {t}; raft's types are 0, 1 and 2"
    | CommittedEntryReplaced(s, o, i, c) -> $"{s} at {o}: entry {i} replaces a committed entry (commit {c})"
    | VoteChangedWithinTerm(s, o, t, v, before) ->
        $"{s} at {o}: a hard state changes the vote from {before} to {v} within term {t}"

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

/// The varint at `pos` in `b`: its value and the position after it, or -1 when it is longer than
/// 64 bits or runs past the end.
let private varintAt (b: byte[]) (pos: int) : struct (uint64 * int) =
    let rec go (pos: int) (shift: int) (acc: uint64) =
        if shift >= 64 || pos >= b.Length then
            struct (0UL, -1)
        else
            let x = b[pos]
            let acc = acc ||| (uint64 (x &&& 0x7Fuy) <<< shift)

            if x < 0x80uy then
                struct (acc, pos + 1)
            else
                go (pos + 1) (shift + 7) acc

    go pos 0 0UL

/// The varint fields 1, 2 and 3 of a protobuf message (the last of each, 0 when absent), or
/// None when the message is malformed: a varint of more than 64 bits or running past the end,
/// a length running past the end, or a wire type other than varint, fixed64, length-delimited
/// and fixed32. Every record's payload goes through it, so it reads in place.
let private varintFields (b: byte[]) : struct (uint64 * uint64 * uint64) voption =
    let rec go (pos: int) (f1: uint64) (f2: uint64) (f3: uint64) =
        if pos >= b.Length then
            ValueSome(struct (f1, f2, f3))
        else
            match varintAt b pos with
            | struct (_, -1) -> ValueNone
            | struct (tag, pos) ->
                match int (tag &&& 7UL) with
                | 0 ->
                    match varintAt b pos with
                    | struct (_, -1) -> ValueNone
                    | struct (v, next) ->
                        match int (tag >>> 3) with
                        | 1 -> go next v f2 f3
                        | 2 -> go next f1 v f3
                        | 3 -> go next f1 f2 v
                        | _ -> go next f1 f2 f3
                | 2 ->
                    match varintAt b pos with
                    | struct (len, start) when start >= 0 && len <= uint64 (b.Length - start) ->
                        go (start + int len) f1 f2 f3
                    | _ -> ValueNone
                | 1 when pos + 8 <= b.Length -> go (pos + 8) f1 f2 f3
                | 5 when pos + 4 <= b.Length -> go (pos + 4) f1 f2 f3
                | _ -> ValueNone

    go 0 0UL 0UL 0UL

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

    let w =
        if r.Segment = w.Segment then
            w
        else
            let w = { w with Segment = r.Segment }
            let index = named[r.Segment]

            match w.LastEntry with
            | Some last when index > last + 1UL -> add (NameIndexGap(r.Segment, index, last)) w
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
        match varintFields r.Data with
        | ValueNone -> undecodable "an entry record's data is not a raftpb.Entry"
        | ValueSome(struct (kind, term, index)) ->
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
                match w.LastEntry with
                | Some last when index <= last && index <= w.StateCommit ->
                    add (CommittedEntryReplaced(r.Segment, r.Offset, index, w.StateCommit)) w
                | _ -> w

            // An overwrite drops the entries from its index on; an append (the usual case) drops nothing.
            { w with
                Terms = setTerm index term w.Terms
                LastEntry = Some index
            }
    | t when t = RecordType.state ->
        match varintFields r.Data with
        | ValueNone -> undecodable "a state record's data is not a raftpb.HardState"
        | ValueSome(struct (term, vote, commit)) ->

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
        match varintFields r.Data with
        | ValueNone -> undecodable "a snapshot record's data is not a walpb.Snapshot"
        | ValueSome _ -> w
    | t -> add (UnknownRecordType(r.Segment, r.Offset, t)) w

/// The largest segment check-dir reads, in bytes.
let maxSegmentBytes = 1L <<< 30

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

/// `check` over a directory's entries as they are: a name the WAL takes for a segment that is
/// not a regular file is an error (the WAL refuses to open it), and is neither sized nor read.
let checkEntries (entries: (string * EntryKind) list) (size: string -> int64) (read: string -> byte[]) =
    let irregular =
        entries
        |> List.choose (fun (n, kind) ->
            match kind, tryName n with
            | NotRegular what, Some _ -> Some(NotRegularFile(n, what))
            | _ -> None)

    let readable =
        entries
        |> List.choose (fun (n, kind) ->
            match kind, tryName n with
            | NotRegular _, Some _ -> None
            | _ -> Some n)

    irregular @ check readable size read
