/// What an export reads from the cache: each method's maps (with the noise seed they were drawn with) and each metric
/// step's per-input values, each set beside the value of metrics.json it reduces to.
module Experiments.ExportResults

open System
open System.IO
open TorchSharp
open Attribution.Models
open Experiments
open Experiments.Results
open Experiments.ExportManifest

let private fail (message: string) = raise (InputProblem message)

let private rerun (run: ExportSource.FinishedRun) =
    let specFile = Path.Combine(run.Folder, "spec.yaml")
    $"re-run its spec (`attribution run {specFile}`) and export again"

/// The sealed JSON artefact of a step, or a clear error.
let private readArtefact<'T> (run: ExportSource.FinishedRun) (step: Plan.Step) =
    let file = Artefacts.path "metrics" step.Hash ".json"
    match Artefacts.tryReadJson<'T> file with
    | Ok value -> value
    | Error reason -> fail $"the cache artefact of {step.Name} ({file}) cannot be read: {reason}; run `attribution cache verify --repair`, then {rerun run}"

/// Why a metric's result has no per-input values.
let private withoutWhy (metric: string) =
    match metric with
    | "explanation_certainty" -> "one KSG estimate over (pixel, attribution) pairs pooled across the inputs, not a mean over them"
    | "two_word" -> "computed on utterance pairs the metric builds from test clips, not on the explained inputs"
    | _ -> "the metric reports none"

/// The curve name and point index of a "curve NAME at I" summary.
let private curvePoint (rest: string) =
    let at = rest.LastIndexOf " at "
    rest.Substring(0, at), rest.Substring(at + 4)

/// One sentence for a per-input tensor of `explained` inputs: what its values are, by the value they summarise.
let private describe (explained: int) (p: PerInput) =
    let undefined = if p.Reduction = PerInputs.MeanOfDefined then " NaN where it is undefined for that input." else ""
    let fewer = if p.Values.Length < explained then $" Only the first {p.Values.Length} explained inputs are evaluated." else ""
    let what =
        match p.Summarises.Split(' ', 2) with
        | [| "scalar"; name |] -> $"Each input's value of which the reported `{name}` is the {p.Reduction}."
        | [| "auc"; name |] -> $"Each input's area under its own `{name}` curve (trapezoid over the same x); the curve's AUC is their {p.Reduction}."
        | [| "curve"; rest |] -> let name, i = curvePoint rest in $"Each input's value at point {i} of the `{name}` curve; the curve's value there is their {p.Reduction}."
        | _ -> $"Each input's `{p.Name}` as the metric reports it."
    what + undefined + fewer

/// Where metrics.json holds the value a summary names, below the result at `prefix`.
let private whereOf (prefix: string) (p: PerInput) =
    match p.Summarises.Split(' ', 2) with
    | [| "scalar"; name |] -> $"{prefix}.Scalars[Name={name}].Value"
    | [| "auc"; name |] -> $"{prefix}.Curves[Name={name}].Auc"
    | [| "curve"; rest |] -> let name, i = curvePoint rest in $"{prefix}.Curves[Name={name}].Values[{i}]"
    | _ -> prefix

/// What a metric's file adds about reported values that are not a reduction of one tensor.
let private metricNote (metric: string) =
    match metric with
    | "sensitivity_n" -> " The reported mean_correlation is the mean of the correlation curve's defined points."
    | "parameter_randomisation" -> " The reported final_ssim and final_spearman are the last stage's points of the ssim and spearman curves."
    | "effective_heat_ratio" -> " Inputs whose box covers more than a third of the image are excluded (NaN); inputs_scored counts the others."
    | _ -> ""

/// Writes one file of per-input values, each with the reported value it summarises (when metrics.json has it).
let private writeValues (dir: string) (path: string) (explained: int) (values: (PerInput * Summary option) list) (description: string) (facts: (string * Fact) list) =
    let tensors = [ for p, _ in values -> p.Name, torch.tensor(p.Values) ]
    let metadata = [ for k, v in facts do match v with Text s -> yield k, s | Texts l -> yield k, String.Join(",", l) | Integer i -> yield k, string i | Number _ -> () ]
    Safetensors.Save(Path.Combine(dir, path), readOnlyDict tensors, readOnlyDict metadata)
    let entries = [ for (p, summary), (_, t) in List.zip values tensors -> { tensor p.Name t (describe explained p) with Summarises = summary } ]
    for _, t in tensors do t.Dispose()
    { file path "safetensors" description with Tensors = entries; Facts = facts }

/// Writes the per-input values of every metric step; returns their entries and the metrics that have none.
let writeMetrics (dir: string) (run: ExportSource.FinishedRun) (summary: RunResult) : FileEntry list * WithoutPerInput list =
    let spec = run.Plan.Spec
    let explained = run.Inputs.Length
    let target = Running.targetName (Plan.metricTarget spec)
    let stepFacts (step: Plan.Step) (metric: string) (mapsTarget: string) =
        [ "metric", Text metric; "methods", Texts step.Methods; "step", Text step.Name; "step_hash", Text step.Hash; "maps_target", Text mapsTarget ]
    let summarised (prefix: string) (reported: PerInput -> float option) (p: PerInput) =
        p, reported p |> Option.map (fun v -> { Value = v; Where = whereOf prefix p; Reduction = p.Reduction })
    let outcomes =
        [ for step in run.Plan.Steps do
            // the step's first method names its files; every method it serves is listed
            let first = List.tryHead step.Methods |> Option.defaultValue ""
            let ids = String.concat ", " step.Methods
            match step.Kind with
            | Plan.EvaluateNegativePerturbation _ ->
                let r = readArtefact<NegativePerturbationResult> run step
                let reported = summary.NegativePerturbation |> Array.tryFind (fun mc -> mc.Method = first)
                let prefix = $"metrics.json NegativePerturbation[Method={first}].Result"
                let values = PerInputs.ofArray r.PerInput |> Array.map (summarised prefix (fun p -> reported |> Option.bind (fun mc -> PerInputs.reported [||] mc.Result.Curves p))) |> List.ofArray
                yield Choice1Of2(writeValues dir $"metrics/negative_perturbation.{first}.safetensors" explained values
                                     $"Negative perturbation of {ids}: each input's AUC of its agreement curve over the masked fractions (100 where the prediction after masking the least important features agrees with the label, for accuracy_*, or with the unmasked prediction, for consistency; else 0)."
                                     (stepFacts step "negative_perturbation" "ground_truth for accuracy_gt; predicted for accuracy_predicted and consistency"))
            | Plan.EvaluateRankAgreement ->
                let pairs = readArtefact<RankPair[]> run step
                let values =
                    [ for pair in pairs do
                        let reported = summary.RankAgreement |> Array.tryFind (fun q -> q.A = pair.A && q.B = pair.B)
                        for p in PerInputs.ofArray pair.PerInput ->
                            { p with Name = $"{p.Name}/{pair.A}/{pair.B}" },
                            reported |> Option.map (fun q -> { Value = q.Spearman; Where = $"metrics.json RankAgreement[A={pair.A}, B={pair.B}].Spearman"; Reduction = p.Reduction }) ]
                yield Choice1Of2(writeValues dir "metrics/rank_agreement.safetensors" explained values
                                     $"Rank agreement: each input's Spearman correlation between two methods' maps (tensor spearman/A/B), over the features of the {target} maps."
                                     (stepFacts step "rank_agreement" target))
            | Plan.EvaluateMethodMetric metric ->
                let r = readArtefact<MetricResult> run step
                let name = Catalogue.metricName metric
                match PerInputs.ofArray r.PerInput with
                | [||] -> yield Choice2Of2 { Metric = name; Methods = step.Methods; Why = withoutWhy name }
                | perInput ->
                    let reported = summary.Metrics |> Array.tryFind (fun m -> m.Metric = name && m.Method = first)
                    let prefix = $"metrics.json Metrics[Metric={name}, Method={first}]"
                    let values = perInput |> Array.map (summarised prefix (fun p -> reported |> Option.bind (fun m -> PerInputs.reported m.Scalars m.Curves p))) |> List.ofArray
                    yield Choice1Of2(writeValues dir $"metrics/{name}.{first}.safetensors" explained values
                                         ($"{name} of {ids}, on the {target} maps: each input's values behind the reported ones (docs/metrics.md)." + metricNote name)
                                         (stepFacts step name target))
            | Plan.ProvideModel | Plan.EstimateCovariance _ | Plan.EstimateStructuredCovariance _ | Plan.Attribute _ -> () ]
    (outcomes |> List.choose (function Choice1Of2 f -> Some f | _ -> None)),
    (outcomes |> List.choose (function Choice2Of2 w -> Some w | _ -> None))

/// One sentence for a diagnostic a method reports per input.
let private diagnosticSentence (name: string) =
    match name with
    | "entropy" -> "Monte-Carlo estimate of Ent_mu(f) = E[f log f] - E f log E f over the method's own samples, mu = N(x, C) (the log-Sobolev certificate, Thm 4.1)."
    | "half_fisher_information" -> "Monte-Carlo estimate of I_mu(f)/2 = E[(C grad f).grad f / f]/2 over the method's own samples (the log-Sobolev certificate, Thm 4.1)."
    | "mean_steps" -> "NeFLAG's gradient evaluations per walk."
    | "split_half_spearman" -> "Spearman correlation between the map from the first half of the method's samples and the map from the second half (how far Monte-Carlo noise moves the map)."
    | "completeness_gap" -> "|sum of the map - (f(x) - f(baseline))|, the path integral's quadrature error in f's units."
    | "relative_completeness_gap" -> "completeness_gap / |f(x) - f(baseline)| (steps: auto bounds it by its tolerance; +infinity where f(x) = f(baseline) and the gap is not 0)."
    | "quadrature_steps" -> "The integration points this input's map used (steps: auto: 16, doubled until the gap met the tolerance, at most max_steps)."
    | "tolerance_unmet" -> "1 where steps: auto reached max_steps with the relative completeness gap still above the tolerance, else 0."
    | other -> $"The method's per-input diagnostic `{other}` (docs/methods.md)."

/// Copies a cached safetensors artefact to `target` a block of 1,024 rows at a time (a step's maps of 50,000 images
/// never whole in memory), with new metadata; returns each tensor's name, dtype and shape.
let private copyInBlocks (source: string) (target: string) (metadata: (string * string) list) =
    use reader = new Attribution.Models.SafetensorsRows(source)
    let declared = [ for name in reader.Names -> name, reader.Type name, reader.Shape name ]
    use writer = new Attribution.Models.SafetensorsRowWriter(target, [ for n, d, s in declared -> struct (n, d, s) ])
    for name, _, shape in declared do
        for first, n in StoredMaps.Blocks (int shape.[0]) 1024 do
            use block = reader.Read(name, int64 first, int64 n)
            writer.Write(name, int64 first, block)
    writer.Commit(readOnlyDict metadata)
    declared

/// Writes each attribution step's maps, with the noise seed as a plain integer; returns their entries.
let writeMaps (dir: string) (run: ExportSource.FinishedRun) (summary: RunResult) : FileEntry list =
    let spec = run.Plan.Spec
    let output = match spec.Explain.Output with Probability -> "the softmax probability" | Logit -> "the logit"
    [ for step in run.Plan.Steps do
        match step.Kind with
        | Plan.Attribute(kind, target) ->
            let artefact = Artefacts.path "attributions" step.Hash ".safetensors"
            if not (Artefacts.soundTensors artefact) then
                fail $"the cache artefact of {step.Name} ({artefact}) is missing, or was corrupt and is now in the cache's quarantine: {rerun run}"
            else
                let metadata = Attribution.Models.Safetensors.ReadMetadata artefact
                let seed = Plan.methodSeed spec kind
                match metadata.TryGetValue "noise_seed" with
                | true, stored when stored <> string seed -> failwith $"{artefact}: noise_seed {stored}, but the plan derives {seed} for {step.Name}"
                | _ -> ()
                let first = List.head step.Methods
                let targetName = Running.targetName target
                let path = $"maps/{first}.{targetName}.safetensors"
                let description = match metadata.TryGetValue "method" with | true, d -> d | _ -> Hashing.display kind
                let facts =
                    [ "methods", Texts step.Methods; "target", Text targetName; "noise_seed", Integer seed; "method", Text description
                      "step", Text step.Name; "step_hash", Text step.Hash ]
                let kept = [ for KeyValue(k, v) in metadata do if k <> "content_sha256" && k <> "header_sha256" && k <> "noise_seed" && k <> "method" && k <> "target" then yield k, v ]
                let written = kept @ [ "methods", String.Join(",", step.Methods); "target", targetName; "noise_seed", string seed; "method", description; "step", step.Name; "step_hash", step.Hash ]
                let tensors = copyInBlocks artefact (Path.Combine(dir, path)) written
                let certificate = summary.LogSobolev |> Array.tryFind (fun c -> c.Method = first && c.Target = targetName)
                let entries =
                    [ for name, dtype, shape in tensors |> List.sortBy (fun (n, _, _) -> n) do
                        let tensor name (_: unit) description = tensorOfShape name dtype shape description
                        if name = "maps" then
                            yield tensor name () $"The attribution of each explained input (same shape as inputs) for the class target_{targetName} of inputs.safetensors, f = {output} of that class. Input i's noise (for sampling methods) comes from a generator seeded with derive(noise_seed, \"input/\" + test_index[i]) (docs/methods.md, Randomness and batching)."
                        elif name.StartsWith "diagnostic." then
                            let diagnostic = name.Substring 11
                            let reported =
                                match diagnostic, certificate with
                                | "entropy", Some c -> Some { Value = c.MeanEntropy; Where = $"metrics.json LogSobolev[Method={first}, Target={targetName}].MeanEntropy"; Reduction = PerInputs.Mean }
                                | "half_fisher_information", Some c -> Some { Value = c.MeanHalfFisher; Where = $"metrics.json LogSobolev[Method={first}, Target={targetName}].MeanHalfFisher"; Reduction = PerInputs.Mean }
                                | _ -> None
                            yield { tensor name () (diagnosticSentence diagnostic) with Summarises = reported } ]
                yield { file path "safetensors" $"""The maps of {String.concat ", " step.Methods} explaining the {targetName} class ({description}); metadata `noise_seed` is the method's noise seed as a plain integer.""" with
                          Tensors = entries; Facts = facts }
        | _ -> () ]
