/// The engine's ReadAll as the simulation judges it, through Wal.FSharp's outcome and its
/// conversions to the model (Wal.FSharp.ModelConvert).
module Wal.Simulation.Convert

open Wal
open Wal.FSharp

/// What the engine's ReadAll gave: an outcome the model knows, or an error kind it does not
/// (corruption, a torn tail, I/O).
type EngineOutcome =
    | Model of Wal.Model.ReadOutcome
    | OtherError of WalErrorKind * message: string

/// Runs ReadAll and classifies what it returns or throws.
let readOutcome (wal: WriteAheadLog) =
    let outcome = ReadOutcome.readAll wal

    match ModelConvert.ofReadOutcome outcome, outcome with
    | Some model, _ -> Model model
    | None, ReadOutcome.Error(kind, message) -> OtherError(kind, message)
    | None, other -> failwith $"the model has a word for every read: {other}"

/// One line for an outcome.
let describe (outcome: EngineOutcome) =
    match outcome with
    | Model o -> Wal.Model.ReadOutcome.describe o
    | OtherError(kind, message) -> $"{kind} ({message})"
