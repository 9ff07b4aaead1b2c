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

/// A segment file's sequence number and first index, when `name` is a segment's name
/// (`%016x-%016x.wal`, as etcd names them); None for any other file.
let segmentName (name: string) =
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

/// A run of consecutive indexes with one term. `Last` grows in place as entries are appended: a
/// run is allocated only when the term changes or an overwrite cuts the log.
type private TermRun =
    {
        First: uint64
        mutable Last: uint64
        Term: uint64
    }

/// What check-dir knows after the records so far, and the problems found, oldest first. Mutable
/// and private to `check`, which is pure: the walk meets every record of a log of any size, and
/// an immutable state copied per record (with a list cell per entry for the terms) cost more
/// than reading the bytes.
[<Sealed>]
type private Walk(named: Map<string, uint64>, firstIndex: uint64) =
    let mutable metadata: byte[] = null
    /// The log's terms as raft sees it after overwrites: runs of consecutive indexes with one
    /// term, oldest first, so that memory grows with term changes and overwrites, not with entries.
    let terms = ResizeArray<TermRun>()
    let mutable hasLastEntry = false
    let mutable lastEntry = 0UL
    let mutable stateTerm = 0UL
    let mutable stateVote = 0UL
    let mutable stateCommit = 0UL
    let mutable segment = ""
    let problems = ResizeArray<Problem>()

    /// The term of `index` in the runs, if the log holds it: the newest run starting at or below
    /// it, if it reaches that far.
    let termAt (index: uint64) =
        let mutable k = terms.Count - 1

        while k >= 0 && terms[k].First > index do
            k <- k - 1

        if k >= 0 && index <= terms[k].Last then
            ValueSome terms[k].Term
        else
            ValueNone

    /// The runs with every index from `index` on dropped, then `index` added with `term`.
    let setTerm (index: uint64) (term: uint64) =
        while terms.Count > 0 && terms[terms.Count - 1].First >= index do
            terms.RemoveAt(terms.Count - 1)

        let top = terms.Count - 1

        if top >= 0 && terms[top].Last >= index then
            terms[top].Last <- index - 1UL

        if top >= 0 && terms[top].Term = term && terms[top].Last + 1UL = index then
            terms[top].Last <- index
        else
            terms.Add
                {
                    First = index
                    Last = index
                    Term = term
                }

    /// The problems found, in the order met.
    member _.Problems = List.ofSeq problems

    /// What one record says, checked against the records before it: metadata, entries' terms
    /// and indexes against the segment names, hard states' terms and commits. `named` gives each
    /// segment's named index; `firstIndex` is the first segment's (entries before it may have
    /// been released and removed).
    member _.Record(r: RecordAt) =
        if r.Segment <> segment then
            segment <- r.Segment
            let index = named[r.Segment]

            // Before any entry, the log reaches as far as the first segment's name says.
            let known =
                if hasLastEntry then
                    lastEntry
                else
                    firstIndex - min firstIndex 1UL

            if index > known + 1UL then
                problems.Add(NameIndexGap(r.Segment, index, known))
            elif hasLastEntry && index < lastEntry + 1UL then
                problems.Add(NameIndexBehind(r.Segment, index, lastEntry))

        match r.Type with
        | t when t = RecordType.crc -> ()
        | t when t = RecordType.metadata ->
            if r.DataBytes > 0 then
                let data = ReadOnlySpan(r.Bytes, r.DataAt, r.DataBytes)

                if isNull metadata then
                    metadata <- data.ToArray()
                elif not (data.SequenceEqual(ReadOnlySpan metadata)) then
                    problems.Add(MetadataConflict(r.Segment, r.Offset))
        | t when t = RecordType.entry ->
            match Protobuf.entry r.Bytes r.DataAt r.DataBytes with
            | ValueNone ->
                problems.Add(UndecodablePayload(r.Segment, r.Offset, "an entry record's data is not a raftpb.Entry"))
            | ValueSome { F1 = kind; F2 = term; F3 = index } ->
                // An overwrite may bring a lower term than the entry it replaces (raft allows it), so
                // only the entry before is compared.
                match termAt (index - 1UL) with
                | ValueSome before when term < before ->
                    problems.Add(EntryTermWentBackwards(r.Segment, r.Offset, index, term, before))
                | _ -> ()

                if kind > 2UL then
                    problems.Add(UnknownEntryType(r.Segment, r.Offset, index, kind))

                let known =
                    if hasLastEntry then
                        lastEntry
                    else
                        firstIndex - min firstIndex 1UL

                if index <= known && index <= stateCommit then
                    problems.Add(CommittedEntryReplaced(r.Segment, r.Offset, index, stateCommit))

                // An overwrite drops the entries from its index on; an append (the usual case) drops nothing.
                setTerm index term
                hasLastEntry <- true
                lastEntry <- index
        | t when t = RecordType.state ->
            match Protobuf.hardState r.Bytes r.DataAt r.DataBytes with
            | ValueNone ->
                problems.Add(UndecodablePayload(r.Segment, r.Offset, "a state record's data is not a raftpb.HardState"))
            | ValueSome { F1 = term; F2 = vote; F3 = commit } ->
                let last =
                    max (firstIndex - min firstIndex 1UL) (if hasLastEntry then lastEntry else 0UL)

                if term < stateTerm then
                    problems.Add(StateTermWentBackwards(r.Segment, r.Offset, term, stateTerm))

                if commit > last && hasLastEntry then
                    problems.Add(CommitBeyondLastEntry(r.Segment, r.Offset, commit, last))

                if term = stateTerm && stateVote <> 0UL && vote <> stateVote then
                    problems.Add(VoteChangedWithinTerm(r.Segment, r.Offset, term, vote, stateVote))

                if term >= stateTerm then
                    stateVote <- vote

                stateTerm <- max stateTerm term
                stateCommit <- commit
        | t when t = RecordType.snapshot ->
            match Protobuf.snapshot r.Bytes r.DataAt r.DataBytes with
            | ValueNone ->
                problems.Add(
                    UndecodablePayload(r.Segment, r.Offset, "a snapshot record's data is not a walpb.Snapshot")
                )
            // Raft holds every index up to a snapshot's, the last at its term (as the engine's
            // invariants take it): a commit may rest on it, the next segment may be named after
            // it, and entries after it follow its term.
            | ValueSome { F1 = index; F2 = term } when index > 0UL && (not hasLastEntry || index > lastEntry) ->
                setTerm index term
                hasLastEntry <- true
                lastEntry <- index
            | ValueSome _ -> ()
        | t -> problems.Add(UnknownRecordType(r.Segment, r.Offset, t))

/// The largest segment check-dir reads, in bytes.
let maxSegmentBytes = 1L <<< 30

/// Every invariant a WAL directory breaks, in the order met: the files (names given, segment
/// contents read on demand), sequence numbers, the records (the CRC chain, torn or corrupt
/// records), and what the records say (metadata, entries' terms and indexes against the segment
/// names, hard states' terms and commits).
let check (names: string list) (size: string -> int64) (read: string -> byte[]) : Problem list =
    let segments =
        names
        |> List.choose (fun n -> segmentName n |> Option.map (fun (s, i) -> n, s, i))
        |> List.sortBy (fun (_, s, _) -> s)

    let files =
        [
            for n in List.sort names do
                if n.EndsWith ".wal.broken" then
                    LeftByRepair n
                elif (segmentName n).IsNone && not (n.EndsWith ".tmp") then
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

        let walk = Walk(named, firstIndex)
        let stopped = scan walk.Record [ for n, _, _ in segments -> n, (fun () -> read n) ]

        let stop =
            match stopped with
            | CleanEnd -> []
            | Torn(s, o) -> [ TornRecord(s, o) ]
            | CrcMismatch(s, o) -> [ CrcChainBroken(s, o) ]
            | Corrupt(s, o) -> [ CorruptRecord(s, o) ]
            | TooLarge(s, o) -> [ ImpossibleLength(s, o) ]

        files @ gaps @ walk.Problems @ stop

/// `check` over a directory's entries as they are: a name the WAL takes for a segment that is
/// not a regular file is an error (the WAL refuses to open it), and is neither sized nor read.
let checkEntries (entries: (string * EntryKind) list) (size: string -> int64) (read: string -> byte[]) =
    let irregular =
        entries
        |> List.choose (fun (n, kind) ->
            match kind, segmentName n with
            | NotRegular what, Some _ -> Some(NotRegularFile(n, what))
            | _ -> None)

    let readable =
        entries
        |> List.choose (fun (n, kind) ->
            match kind, segmentName n with
            | NotRegular _, Some _ -> None
            | _ -> Some n)

    irregular @ check readable size read
