/// The two durability rules against each other: raft's contract never asks for more than etcd's
/// exact rule, so whatever etcd's rule allows after a crash, raft's contract allows too.
module Wal.Properties.DurabilityProperties

open Expecto
open FsCheck
open FsCheck.FSharp
open Wal.Model
open Wal.Properties.Support
open Wal.Oracle.Scenarios

/// Both models through one scenario; at every step, the outcomes etcd's rule allows after a crash
/// must be among those raft's contract allows. An open reads everything written, which both allow.
let ``raft's contract allows everything etcd's exact rule allows, after any step`` (scenario: Scenario) =
    let subset (etcd: DurableLog) (raft: DurableLog) =
        let allowedByRaft = Durability.allowedAfterCrash Snapshot.zero raft |> Set.ofList

        Durability.allowedAfterCrash Snapshot.zero etcd
        |> List.forall allowedByRaft.Contains

    let step (etcd: DurableLog, raft: DurableLog, ok: bool) (step: Step) =
        let etcd', raft' =
            match step with
            | Happen(PowerLoss _) -> etcd, raft
            | Do Close -> Durability.synced etcd, Durability.synced raft
            | Do(Open at) ->
                match List.tryLast (Durability.candidates etcd) with
                | Some records when not records.IsEmpty ->
                    let observed = Stream.readAll at records

                    match Durability.recovered at observed etcd, Durability.recovered at observed raft with
                    | Some e, Some r -> e, r
                    | _ -> etcd, { raft with Bases = [] }
                | _ -> etcd, raft
            | Do op -> Durability.acknowledged etcd op, Durability.acknowledged raft op

        etcd', raft', ok && not raft'.Bases.IsEmpty && subset etcd' raft'

    let _, _, ok =
        scenario.Steps
        |> List.fold
            step
            (Durability.empty DurabilityRule.EtcdExact, Durability.empty DurabilityRule.RaftContract, true)

    ok |> Prop.label (string scenario)

/// The rules differ exactly where the docs say: a Save repeating the term and vote read back.
let ``after an open, a Save repeating the hard state read is durable under etcd's rule only`` () =
    let saved =
        [
            Create [| 1uy |]
            Save(
                { Term = 2UL; Vote = 1UL; Commit = 0UL },
                [
                    {
                        Term = 2UL
                        Index = 1UL
                        Kind = 0
                        Data = [| 7uy |]
                    }
                ]
            )
        ]

    let afterOpen rule =
        let log =
            saved
            |> List.fold Durability.acknowledged (Durability.empty rule)
            |> Durability.synced

        let read = Stream.readAll Snapshot.zero (List.last (Durability.candidates log))

        match Durability.recovered Snapshot.zero read log with
        | Some log ->
            let commitOnly = Save({ Term = 2UL; Vote = 1UL; Commit = 1UL }, [])
            let changedTerm = Save({ Term = 3UL; Vote = 1UL; Commit = 1UL }, [])

            let lostAfter op =
                (Durability.acknowledged log op).Durable = 0

            lostAfter commitOnly, lostAfter changedTerm
        | None -> failtest "the full read must be allowed"

    Expect.equal
        (afterOpen DurabilityRule.RaftContract)
        (true, false)
        "raft's contract: only the term change is durable"

    Expect.equal (afterOpen DurabilityRule.EtcdExact) (false, false) "etcd's rule: the first Save after open is durable"

/// This file's tests.
let tests =
    testList
        "DurabilityProperties"
        [
            testPropertyWithConfig
                (fsCheck 300 [ typeof<WithCrashes> ])
                "raft's contract allows everything etcd's exact rule allows, after any step"
                ``raft's contract allows everything etcd's exact rule allows, after any step``
            testCase
                "after an open, a Save repeating the hard state read is durable under etcd's rule only"
                ``after an open, a Save repeating the hard state read is durable under etcd's rule only``
        ]
