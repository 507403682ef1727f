/// Every method the toolkit knows: the shipped entries (one file each under Methods/), in the order `list` shows them,
/// then the entries a user registered from their own code. YAML, the F# builders, validation, planning, the runner and
/// `list` find methods here.
module Experiments.MethodRegistry

open System.Collections.Generic
open Experiments
open Experiments.MethodEntries

/// The shipped methods.
let shipped: MethodEntry list =
    [ Saliency.entry
      GradientXInput.entry
      IntegratedGradients.entry
      SmoothGrad.entry
      SmoothGradSq.entry
      VarGrad.entry
      FunctionalInformation.entry
      GuidedBackprop.entry
      Deconvnet.entry
      NegativeFluxAggregation.entry
      Occlusion.entry
      Lime.entry
      GradCam.entry
      FeatureSuppression.entry
      ExpectedGradients.entry
      GuidedIntegratedGradients.entry
      AdversarialGradientIntegration.entry
      InformationBottleneck.entry
      InputIba.entry
      ExtremalPerturbation.entry
      MipIn.entry
      DeepLift.entry
      DeepShap.entry
      Taylor.entry
      SampledGradients.entry
      RandomMap.entry ]

let private registered = List<MethodEntry>()

/// Every entry: the shipped ones, then the registered ones in the order they were registered.
let all () = shipped @ lock registered (fun () -> List.ofSeq registered)

/// The yaml names of every entry.
let names () = all () |> List.map _.Name

/// Adds a method defined outside the library (MethodEntry.custom), usable by name in YAML and in F# specs from now
/// on. Its name must be new and safe as a file name (it is the default id of a method, which names files).
let register (entry: MethodEntry) =
    lock registered (fun () ->
        match Vocabulary.identProblem entry.Name with
        | Some problem -> invalidArg "entry" $"method name '{entry.Name}' {problem}"
        | None when all () |> List.exists (fun e -> e.Name = entry.Name) -> invalidArg "entry" $"a method named '{entry.Name}' is already registered"
        | None -> registered.Add entry)

/// Removes a registered entry (tests register and remove their own).
let unregister (name: string) = lock registered (fun () -> registered.RemoveAll(fun e -> e.Name = name) |> ignore)

/// The entry whose parameters `kind` holds.
let entryOf (kind: MethodKind) : MethodEntry =
    match kind with
    | Registered r ->
        match all () |> List.tryFind (fun e -> e.Name = r.Entry) with
        | Some e -> e
        | None -> invalidArg "kind" $"no method named '{r.Entry}' is registered (MethodRegistry.register)"
    | _ -> shipped |> List.find (fun e -> (e.Variant.Encode kind).IsSome)

/// The yaml name of a method kind.
let nameOf (kind: MethodKind) = (entryOf kind).Name

/// The facts of a method's parameter setting.
let facts (kind: MethodKind) = (entryOf kind).Facts kind

/// The engine's method for a method's parameter setting.
let build (context: Building.MethodContext) (kind: MethodKind) = (entryOf kind).Build context kind
