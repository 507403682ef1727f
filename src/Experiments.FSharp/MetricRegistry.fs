/// Every metric the toolkit knows: the shipped entries (one file each under Metrics/), in the order `list` shows them,
/// then the entries a user registered from their own code.
module Experiments.MetricRegistry

open System.Collections.Generic
open Experiments
open Experiments.MetricEntries

/// The shipped metrics.
let shipped: MetricEntry list =
    [ NegativePerturbation.entry
      RankAgreement.entry
      InsertionDeletion.entry
      SensitivityN.entry
      ParameterRandomisation.entry
      ExplanationCertainty.entry
      EffectiveHeatRatio.entry
      Roar.entry
      TaylorFidelity.entry
      TwoWord.entry ]

let private registered = List<MetricEntry>()

/// Every entry: the shipped ones, then the registered ones in the order they were registered.
let all () = shipped @ lock registered (fun () -> List.ofSeq registered)

/// The yaml names of every entry.
let names () = all () |> List.map _.Name

/// Adds a per-method metric defined outside the library (MetricEntry.custom), usable by name in YAML and in F# specs
/// from now on. Its name must be new and safe as a file name (it names the metric's curve files).
let register (entry: MetricEntry) =
    lock registered (fun () ->
        match Vocabulary.identProblem entry.Name with
        | Some problem -> invalidArg "entry" $"metric name '{entry.Name}' {problem}"
        | None when all () |> List.exists (fun e -> e.Name = entry.Name) -> invalidArg "entry" $"a metric named '{entry.Name}' is already registered"
        | None when entry.Build.IsNone -> invalidArg "entry" $"metric '{entry.Name}' has no engine metric to evaluate it (MetricEntry.custom gives one)"
        | None -> registered.Add entry)

/// Removes a registered entry (tests register and remove their own).
let unregister (name: string) = lock registered (fun () -> registered.RemoveAll(fun e -> e.Name = name) |> ignore)

/// The entry whose parameters `metric` holds.
let entryOf (metric: MetricSpec) : MetricEntry =
    match metric with
    | RegisteredMetric r ->
        match all () |> List.tryFind (fun e -> e.Name = r.Entry) with
        | Some e -> e
        | None -> invalidArg "metric" $"no metric named '{r.Entry}' is registered (MetricRegistry.register)"
    | _ -> shipped |> List.find (fun e -> (e.Variant.Encode metric).IsSome)

/// The yaml name of a metric.
let nameOf (metric: MetricSpec) = (entryOf metric).Name

/// The facts of a metric's parameter setting.
let facts (metric: MetricSpec) = (entryOf metric).Facts metric
