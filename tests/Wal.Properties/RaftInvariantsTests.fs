/// The engine's reading of raft's invariants (Reading.RaftInvariants), case by case at the edges
/// the properties reach only now and then: what a read from a later segment knows, terms within
/// one Save, a snapshot installed past the entries, overwrites compared with the entry before
/// them, and gaps left to ReadAll's SliceOutOfRange.
module Wal.Properties.RaftInvariantsTests

open Expecto
open System
open Wal
open Wal.Reading

let private entry (term: uint64) (index: uint64) =
    Entry(term, index, EntryType.Normal, ReadOnlyMemory<byte>.Empty)

let private accept (invariants: RaftInvariants) (e: Entry) =
    let e = e
    invariants.Accept(&e)

let private violation (invariants: RaftInvariants) (e: Entry) (checkGap: bool) =
    let e = e
    invariants.Violation(&e, checkGap)

let private saveViolation (invariants: RaftInvariants) (entries: Entry[]) (state: HardState) =
    invariants.SaveViolation(ReadOnlySpan entries, state)

/// Invariants that have read `entries`, given as (term, index), from the first segment.
let private after (entries: (uint64 * uint64) list) =
    let invariants = RaftInvariants.After [ "0000000000000000-0000000000000000.wal" ]

    for term, index in entries do
        accept invariants (entry term index)

    invariants

let private refused (why: string) = Expect.isNotNull why "refused"
let private taken (why: string) = Expect.isNull why "taken"

let tests =
    testList
        "RaftInvariantsTests"
        [
            testCase "a read from a later segment knows the log reached the index before the segment's name" (fun () ->
                Expect.equal (RaftInvariants.After([ "0000000000000003-0000000000000005.wal" ]).LastIndex) 4UL ""
                Expect.equal (RaftInvariants.After([ "0000000000000000-0000000000000000.wal" ]).LastIndex) 0UL "")

            testCase "a read from a later segment refuses an entry at or below the commit its header repeats" (fun () ->
                // No entry read yet, but the segment's name and the state say the log held entries 1-4.
                let invariants = RaftInvariants.After [ "0000000000000003-0000000000000005.wal" ]
                invariants.Accept(HardState(2UL, 1UL, 4UL))
                refused (violation invariants (entry 2UL 3UL) false)
                taken (violation invariants (entry 2UL 5UL) false))

            testCase "a Save whose terms go down within it is refused; up is taken" (fun () ->
                let invariants = after []
                taken (saveViolation invariants [| entry 1UL 1UL; entry 2UL 2UL |] HardState.Empty)
                refused (saveViolation invariants [| entry 2UL 1UL; entry 1UL 2UL |] HardState.Empty))

            testCase "an entry after a snapshot installed past the log may not bring a lower term" (fun () ->
                let invariants = after [ 1UL, 1UL ]
                invariants.Accept(Snapshot(5UL, 3UL))
                refused (violation invariants (entry 2UL 6UL) false)
                taken (violation invariants (entry 3UL 6UL) false))

            testCase "an overwrite is compared with the entry before it, not with the one it replaces" (fun () ->
                let invariants =
                    after [ 1UL, 1UL; 1UL, 2UL; 1UL, 3UL; 1UL, 4UL; 3UL, 5UL; 3UL, 6UL ]
                // Term 2 replaces term 3 at index 4: below what it replaces, above the entry before it.
                taken (violation invariants (entry 2UL 4UL) false)
                refused (violation invariants (entry 2UL 6UL) false))

            testCase "an entry past a gap is left to ReadAll's SliceOutOfRange; a writer refuses it" (fun () ->
                let invariants = after [ 5UL, 1UL; 5UL, 2UL; 5UL, 3UL ]
                taken (violation invariants (entry 1UL 10UL) false)
                refused (violation invariants (entry 1UL 10UL) true))

            testCase "a segment named past the entries read is a gap, whether or not entries were read" (fun () ->
                let invariants = after []
                taken (invariants.Segment "0000000000000000-0000000000000000.wal")
                invariants.Accept(Snapshot(4UL, 1UL))
                taken (invariants.Segment "0000000000000001-0000000000000005.wal")
                refused (invariants.Segment "0000000000000002-0000000000000009.wal"))
        ]
