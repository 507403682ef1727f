/// Writes a run folder: the spec and plan, the environment, metrics.json and metrics.csv, a Markdown
/// report with the Table-1-style table, heatmap grids and curves. The folder is built beside its final
/// place and swapped in, so a crash never leaves a half-written report.
module Experiments.Report

open System
open System.IO
open System.Text
open System.Text.Json
open TorchSharp
open Attribution.IO
open Attribution.Rendering
open Experiments
open Experiments.Results
open Experiments.Execute

let private json = JsonSerializerOptions(WriteIndented = true, NumberHandling = Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals)

/// metrics.json holds what the report shows; each input's values (Results.PerInput, thousands of numbers per metric at
/// full scale) stay in the cache, from which `attribution export` writes them out.
let private summaryJson =
    let resolver = Serialization.Metadata.DefaultJsonTypeInfoResolver()
    resolver.Modifiers.Add(fun info ->
        for p in info.Properties |> Seq.filter (fun p -> p.Name = "PerInput") |> List.ofSeq do info.Properties.Remove p |> ignore)
    JsonSerializerOptions(json, TypeInfoResolver = resolver)

let private f2 (x: float) = if Double.IsNaN x then "n/a" else x.ToString("F2", Globalization.CultureInfo.InvariantCulture)
let private f3 (x: float) = if Double.IsNaN x then "n/a" else x.ToString("F3", Globalization.CultureInfo.InvariantCulture)
let private g4 (x: float) = x.ToString("G4", Globalization.CultureInfo.InvariantCulture)

let private curveAuc (result: NegativePerturbationResult) name =
    result.Curves |> Array.tryFind (fun c -> c.Name = name) |> Option.map (fun c -> c.Auc) |> Option.defaultValue nan

/// Rows of the Table-1-style table: method id, its three AUCs.
let private table (result: RunResult) =
    [ for mc in result.NegativePerturbation -> let id, np = mc.Method, mc.Result in id, curveAuc np "accuracy_gt", curveAuc np "accuracy_predicted", curveAuc np "consistency" ]

/// A value and, when it has one, its bootstrap interval: `51.27 [50.10, 52.45]` (the convention the report states once).
let private withInterval (format: float -> string) (value: float) (interval: Interval option) =
    match interval with
    | Some i when not (Double.IsNaN i.Low) -> $"{format value} [{format i.Low}, {format i.High}]"
    | _ -> format value

/// A value's interval as (low, high), where it has one.
let private boundsOf (name: string) (intervals: Interval[]) =
    Intervals.find name intervals |> Option.filter (fun i -> not (Double.IsNaN i.Low)) |> Option.map (fun i -> i.Low, i.High)

let private hasIntervals (r: RunResult) =
    (r.NegativePerturbation |> Array.exists (fun mc -> not (Array.isEmpty (Intervals.ofArray mc.Result.Intervals))))
    || (r.RankAgreement |> Array.exists (fun p -> not (Array.isEmpty (Intervals.ofArray p.Intervals))))
    || (r.Metrics |> Array.exists (fun m -> not (Array.isEmpty (Intervals.ofArray m.Intervals))))

/// One sentence per metric: what the numbers are and which way is better.
let private metricIntro (metric: string) =
    match metric with
    | "insertion_deletion" ->
        "Probability of the explained class as pixels are deleted (replaced by the substrate) or inserted (revealed on it), most important first; AUC over the fraction in [0, 1]. Lower deletion, higher insertion and higher Difference (insertion - deletion) are better; `deletion`, `insertion`, `difference` average the black and blurred rounds (NeFLAG's protocol). On text the features are tokens: deletion writes `<unk>` over the most important real tokens, insertion reveals them on an all-`<unk>` input, in 20 steps of each input's own length. On audio the features are 25 ms frames of the waveform, set to silence one a step (one round)."
    | "sensitivity_n" ->
        "Pearson correlation between the attribution summed over N random pixels and the drop of f when they are set to 0, averaged over N on a log grid (curve: per N). Higher is better. On text: N random real tokens set to `<unk>` and the drop of the target's logit; N up to 80% of the median length, inputs with at most N tokens skipped at that N. On audio: N random 25 ms frames set to silence."
    | "parameter_randomisation" ->
        "The model's layers re-initialised from the output backwards, cumulatively; similarity of each new map to the original (curve: per stage). A map that stays similar after randomisation does not depend on what the model learnt: lower is better."
    | "explanation_certainty" ->
        "KSG estimate (k = 3) of the mutual information between a pixel's value and its attribution, over sampled (pixel, attribution) pairs, in nats. One estimate over pooled pairs, so its interval is not a bootstrap: a delete-a-group jackknife over the inputs (10 groups, Student's t), which repeats no pixel."
    | "two_word" ->
        "The Functional Information paper's audio experiment (Fig. 2) made measurable: a test clip of 'right' followed by one of 'cat' (2 s), each class explained on the same waveform; the share of sum |map| on the class's own word. 1 = all of it, 0.5 = no preference; the paper shows its maps concentrating on the right word, without a number."
    | "roar" ->
        "Remove and retrain (Hooker et al. 2019), reduced scale: the most important fraction of pixels of a training subset and of the explained test inputs replaced by the training mean, a fresh model (same initialisation) trained on the masked subset and tested on the masked inputs. A ranking that finds what the model needs drops accuracy faster than the random ranking: lower is better; `removed_minus_random` is the method's mean accuracy minus the random ranking's (below 0: it removed more of what the model needs). Its intervals resample the test inputs for these retrained models; the retraining's own noise (another initialisation or order of batches) is not in them."
    | "taylor_fidelity" ->
        "The Taylor framework's properties (Deng et al. 2020), on the explained output f with baseline 0 (a ReLU network's logit is piecewise linear, so its second-order terms vanish almost everywhere; the softmax probability has curvature): the approximation error |sum of the map - (f(x) - f(0))|, and the L1 error of the method's map of each input's second-order Taylor polynomial, split into its independent part and its interactive part, against the ideal assignment (own terms; each pairwise term half to each feature), relative to the ideal's L1 size. Lower is better; 0 means the terms are assigned exactly."
    | other -> other

/// Our values beside a paper's table for the same metric, and how many pairs of methods are ordered alike; then
/// the claims the papers make in words. Methods map to paper rows by kind (the first of ours per row counts).
let private paperComparison (line: string -> unit) (spec: Spec) (metric: string) (results: MetricResult[]) =
    let kindOf id = spec.Methods |> List.tryFind (fun m -> m.Id = id) |> Option.map (fun m -> m.Kind)
    // The published tables are ImageNet's: a text or audio run is not set beside them.
    let images = Domain.modalityOf spec.Data.Dataset = Modality.Image
    for table in PaperReference.tables |> List.filter (fun t -> images && t.Metric = metric) do
        let withIntervals =
            [ for m in results do
                match kindOf m.Method |> Option.bind table.RowOf, m.Scalars |> Array.tryFind (fun s -> s.Name = table.Scalar) with
                | Some row, Some v ->
                    let interval = boundsOf table.Scalar m.Intervals
                    yield row, v.Value, interval
                | _ -> () ] |> List.distinctBy (fun (row, _, _) -> row)
        let ours = withIntervals |> List.map (fun (row, v, _) -> row, v)
        if ours.Length >= 2 then
            let direction = match table.Better with PaperReference.Higher -> "higher is better" | PaperReference.Lower -> "lower is better"
            line ""
            line $"`{table.Scalar}` beside {table.Source} ({direction}; other data and networks, so compare orderings):"
            line ""
            line "| paper row | paper | ours |"
            line "|---|---:|---:|"
            for row, theirs in table.Rows do
                match ours |> List.tryFind (fun (k, _) -> k = row) with
                | Some (_, v) -> line $"| {row} | {f3 theirs} | {f3 v} |"
                | None -> line $"| {row} | {f3 theirs} | - |"
            let agree, total = PaperReference.sameOrder ours table.Rows
            line ""
            line $"- {agree} of {total} pairs of methods are ordered as in the paper (point values)."
            if withIntervals |> List.exists (fun (_, _, i) -> i.IsSome) then
                let agreeResolved, resolved, _ = PaperReference.sameOrderResolved withIntervals table.Rows
                line $"- {resolved} of the {total} pairs are resolved (their intervals do not overlap); {agreeResolved} of those are ordered as in the paper, and {total - resolved} are not resolved at this size."
            let best l = l |> List.sortBy (fun (_, v) -> match table.Better with PaperReference.Higher -> -v | PaperReference.Lower -> v) |> List.head |> fst
            let paperCommon = table.Rows |> List.filter (fun (k, _) -> ours |> List.exists (fun (k2, _) -> k2 = k))
            line $"- best here: {best ours}; best in the paper among these: {best paperCommon}."
    let concerned = spec.Methods |> List.filter (fun m -> PaperReference.claimMethods metric m.Kind) |> List.length
    match PaperReference.claims metric (Domain.modalityOf spec.Data.Dataset) with
    | [] -> ()
    | _ when concerned < 2 -> ()
    | claims ->
        line ""
        for c in claims do line $"- Paper claim: {c}"
        // the claims that order groups of methods, judged by our intervals (images: the papers' claims are ImageNet's)
        if images then
            for claim in PaperReference.groupClaims |> List.filter (fun c -> c.Metric = metric) do
                let ours =
                    [ for m in results do
                        match kindOf m.Method |> Option.bind PaperReference.inputIbaRow, m.Scalars |> Array.tryFind (fun s -> s.Name = claim.Scalar) with
                        | Some row, Some v -> yield row, v.Value, boundsOf claim.Scalar m.Intervals
                        | _ -> () ] |> List.distinctBy (fun (row, _, _) -> row)
                PaperReference.groupVerdict claim ours |> Option.iter (fun v -> line $"- {v}")
        // the two-word claim is about FI's maps: a verdict for each FI method
        if metric = "two_word" then
            for m in results do
                match kindOf m.Method with
                | Some(FunctionalInformation _) ->
                    let share name = m.Scalars |> Array.tryFind (fun s -> s.Name = name) |> Option.map (fun s -> s.Value, boundsOf name m.Intervals)
                    match share "right_share_on_first_word", share "cat_share_on_second_word" with
                    | Some right, Some cat -> line $"- {PaperReference.twoWordVerdict m.Method right cat}"
                    | _ -> ()
                | _ -> ()
    if metric = "explanation_certainty" then
        let scored =
            [ for m in results do
                match kindOf m.Method, m.Scalars |> Array.tryFind (fun s -> s.Name = "mutual_information_nats") with
                | Some kind, Some v when not (System.Double.IsNaN v.Value) -> yield kind, v.Value, boundsOf "mutual_information_nats" m.Intervals
                | _ -> () ]
        for v in PaperReference.samplingMattersVerdicts scored do line $"- {v}"

/// For each map made with `steps: auto`, one sentence: every input met the tolerance, or how many reached max_steps
/// without meeting it (their maps keep that quadrature error: the report says so rather than leaving it in a table).
let private autoStepsLines (spec: Spec) (output: RunOutput) =
    [ for KeyValue((id, target), d) in output.Diagnostics |> Seq.sortBy (fun kv -> kv.Key) do
        match spec.Methods |> List.tryFind (fun m -> m.Id = id) |> Option.map _.Kind, d.TryGetValue "tolerance_unmet", d.TryGetValue "quadrature_steps" with
        | Some(IntegratedGradientsAuto(tolerance, maxSteps, _)), (true, unmet), (true, steps) ->
            let unmet = unmet.``to``(torch.ScalarType.Float64).data<float>().ToArray()
            let steps = steps.``to``(torch.ScalarType.Float64).data<float>().ToArray()
            let failing = unmet |> Array.filter (fun u -> u > 0.0) |> Array.length
            let bound = $"|sum of the map - (f(x) - f(0))| <= {g4 tolerance} |f(x) - f(0)|"
            if failing = 0 then
                yield $"- `{id}` ({targetName target}): every one of {unmet.Length} inputs met {bound}, with {g4 (Array.average steps)} points on average and at most {g4 (Array.max steps)}."
            else
                let largest =
                    match d.TryGetValue "relative_completeness_gap" with
                    | true, g -> $" (largest relative gap {g4 (g.``to``(torch.ScalarType.Float64).max().item<float>())})"
                    | _ -> ""
                yield $"- **`{id}` ({targetName target}): {failing} of {unmet.Length} inputs reached max_steps {maxSteps} with the completeness gap still above the tolerance**{largest}: {bound} does not hold for them, and their maps keep that quadrature error. Raise `max_steps` or loosen `tolerance`."
        | _ -> () ]

let private markdown (plan: Plan.Plan) (output: RunOutput) (env: RunEnvironment.EnvironmentRecord) (heatmapFiles: string list) (curveFiles: string list) =
    let r = output.Result
    let spec = plan.Spec
    let modality = match Domain.modalityOf spec.Data.Dataset with Modality.Image -> "image" | Modality.Audio -> "audio" | Modality.Text -> "text" | Modality.Tabular -> "tabular"
    let sb = StringBuilder()
    let line (s: string) = sb.AppendLine s |> ignore
    line $"# {spec.Name}"
    line ""
    line $"""Run of commit `{env.Commit}`{(if env.Dirty then " (with uncommitted changes)" else "")} on {env.Device}, started {env.StartedUtc}. {env.Runtime}."""
    line ""
    if hasIntervals r then
        line $"Values in brackets are 95%% percentile-bootstrap intervals of the mean over the explained inputs ({Attribution.Metrics.Bootstrap.DefaultResamples} resamples, seeded): how far the value would move with another draw of inputs of the same kind. Two methods whose intervals overlap are not separated at this size."
        line ""
    line "## Model"
    line $"- {Hashing.display spec.Model.Architecture}: {r.Model.Parameters} parameters, {r.Model.Source}"
    line $"- test accuracy **{100.0 * r.Model.TestAccuracy |> f2}%%** on the full test set"
    if r.Model.TrainingSeconds > 0.0 then
        line $"""- trained in {f2 r.Model.TrainingSeconds} s ({spec.Model.Epochs} epochs, Adam, learning rate {g4 spec.Model.LearningRate}, batch {spec.Model.BatchSize}); loss per epoch: {r.Model.EpochLosses |> Array.map f3 |> String.concat ", "}"""
    line $"""- explained: {r.Explained} test inputs (a seeded random subset), targets: {spec.Explain.Targets |> List.map targetName |> String.concat ", "}, f = {(match spec.Explain.Output with Probability -> "softmax probability" | Logit -> "logit")} of the target class"""
    match spec.Explain.Precision with
    | Fp32 -> ()
    | Tf32 -> line "- precision: tf32 (explain.precision): CUDA's TF32 tensor-core arithmetic in the attribution steps' products and convolutions; unchanged on the CPU; metrics in fp32"
    | Bf16 -> line "- precision: bf16 (explain.precision): the maps come from a bfloat16 copy of the network (8-bit mantissa; docs/performance.md states how far they stay from fp32's); metrics in fp32"
    line ""
    line "## Methods"
    for m in spec.Methods do
        let timing = r.Timings |> Array.filter (fun t -> t.Method = m.Id)
        let seconds = timing |> Array.sumBy (fun t -> t.Seconds)
        line $"""- `{m.Id}`: {RegularExpressions.Regex.Replace(Hashing.display m.Kind, @"\s+", " ")}; {f2 seconds} s{(if timing |> Array.exists (fun t -> t.Cached) then " (from the cache)" else "")}"""
    if not (Array.isEmpty r.NegativePerturbation) then
        let np = r.NegativePerturbation.[0].Result
        line ""
        line "## Negative perturbation (Gat et al. 2022, Table 1)"
        line ""
        line $"""Features are masked to the value of the mask, least important first, at fractions {np.Fractions |> Array.map g4 |> String.concat ", "}. AUC = trapezoid over the fraction of the value in percent, so the largest possible AUC is {f2 (100.0 * (Array.last np.Fractions - np.Fractions.[0]))}. Accuracy (GT): maps explain the ground-truth class, accuracy against the labels; Accuracy (predicted): maps explain the predicted class, accuracy against the labels; Consistency: maps explain the predicted class, agreement with the unmasked prediction. Higher is better."""
        line ""
        line "| method | Accuracy GT | Accuracy predicted | Consistency |"
        line "|---|---:|---:|---:|"
        for mc in r.NegativePerturbation do
            let cell name = withInterval f2 (curveAuc mc.Result name) (Intervals.find name mc.Result.Intervals)
            line $"""| {mc.Method} | {cell "accuracy_gt"} | {cell "accuracy_predicted"} | {cell "consistency"} |"""
        let ours =
            [ for m in spec.Methods do
                match PaperReference.rowOf m.Kind, r.NegativePerturbation |> Array.tryFind (fun mc -> mc.Method = m.Id) |> Option.map (fun mc -> mc.Method, mc.Result) with
                | Some row, Some (_, res) -> yield row, (curveAuc res "accuracy_gt", curveAuc res "accuracy_predicted", curveAuc res "consistency")
                | _ -> () ] |> List.distinctBy fst
        // the same rows with each value's interval, for the pairs the intervals resolve
        let intervalsOf name =
            [ for m in spec.Methods do
                match PaperReference.rowOf m.Kind, r.NegativePerturbation |> Array.tryFind (fun mc -> mc.Method = m.Id) with
                | Some row, Some mc ->
                    let interval = boundsOf name mc.Result.Intervals
                    yield row, curveAuc mc.Result name, interval
                | _ -> () ] |> List.distinctBy (fun (row, _, _) -> row)
        if ours.Length >= 2 then
            line ""
            line $"The paper's {PaperReference.functionalInformationSetting modality}, so compare orderings rather than values; fractions 0.1..0.9:"
            line ""
            line "| paper row | paper GT | paper predicted | paper consistency | ours GT | ours predicted | ours consistency |"
            line "|---|---:|---:|---:|---:|---:|---:|"
            for row, (a, b, c) in PaperReference.functionalInformationTable1 modality do
                match ours |> List.tryFind (fun (k, _) -> k = row) with
                | Some (_, (x, y, z)) -> line $"| {row} | {f2 a} | {f2 b} | {f2 c} | {f2 x} | {f2 y} | {f2 z} |"
                | None -> line $"| {row} | {f2 a} | {f2 b} | {f2 c} | - | - | - |"
            line ""
            for name, curveName, pick in [ "Accuracy GT", "accuracy_gt", (fun (a, _, _) -> a); "Accuracy predicted", "accuracy_predicted", (fun (_, b, _) -> b); "Consistency", "consistency", (fun (_, _, c) -> c) ] do
                let paper = PaperReference.functionalInformationTable1 modality |> List.map (fun (k, v) -> k, pick v)
                let agree, total = PaperReference.sameOrder (ours |> List.map (fun (k, v) -> k, pick v)) paper
                let withIntervals = intervalsOf curveName
                if withIntervals |> List.exists (fun (_, _, i) -> i.IsSome) then
                    let agreeResolved, resolved, _ = PaperReference.sameOrderResolved withIntervals paper
                    line $"- {name}: {agree} of {total} pairs of methods are ordered as in the paper (point values); {resolved} pairs are resolved by their intervals, {agreeResolved} of them ordered as in the paper, {total - resolved} not resolved at this size."
                else
                    line $"- {name}: {agree} of {total} pairs of methods are ordered as in the paper."
    if not (Array.isEmpty r.LogSobolev) then
        line ""
        line "## Log-Sobolev certificate (Thm 4.1)"
        line ""
        line "Monte-Carlo estimates per input over the method's own samples: Ent_mu(f) = E[f log f] - E f log E f and I_mu(f)/2 = E[(C grad f).grad f / f]/2, mu = N(x, C). The inequality holds for the true values; an estimate can cross it by sampling error when the bound is nearly tight."
        line ""
        line "Every explanation's pair of estimates is in `certificates.csv`."
        line ""
        line "| method | target | mean Ent | mean I/2 | inputs with Ent <= I/2 | median Ent/(I/2) |"
        line "|---|---|---:|---:|---:|---:|"
        for c in r.LogSobolev |> Array.sortBy (fun c -> c.Method, c.Target) do
            line $"| {c.Method} | {c.Target} | {g4 c.MeanEntropy} | {g4 c.MeanHalfFisher} | {f2 (100.0 * c.HoldsFraction)}%% | {f3 c.MedianRatio} |"
    for metric, results in r.Metrics |> Array.groupBy (fun m -> m.Metric) do
        line ""
        line $"## {metric}"
        line ""
        line (metricIntro metric)
        line ""
        let names = results.[0].Scalars |> Array.map (fun s -> s.Name)
        line ("| method | " + String.concat " | " names + " |")
        line ("|---|" + String.replicate names.Length "---:|")
        for m in results do line ("| " + m.Method + " | " + (m.Scalars |> Array.map (fun s -> withInterval f3 s.Value (Intervals.find s.Name m.Intervals)) |> String.concat " | ") + " |")
        paperComparison line spec metric results
    let otherDiagnostics =
        [ for KeyValue((id, target), d) in output.Diagnostics |> Seq.sortBy (fun kv -> kv.Key) do
            for KeyValue(name, values) in d |> Seq.sortBy (fun kv -> kv.Key) do
                if name <> "entropy" && name <> "half_fisher_information" then
                    // An undefined value (NaN: a split half whose map is constant, every feature tied, has no rank
                    // correlation) is left out of the summary and counted, rather than making the whole row NaN.
                    let all = values.``to``(torch.ScalarType.Float64)
                    let v = all.index(all.isnan().logical_not())
                    let undefined = int (all.shape.[0] - v.shape.[0])
                    let mean, median, largest =
                        if v.shape.[0] = 0L then nan, nan, nan else v.mean().item<float>(), v.median().item<float>(), v.max().item<float>()
                    yield id, targetName target, name, mean, median, largest, undefined, int all.shape.[0] ]
    if not otherDiagnostics.IsEmpty then
        line ""
        line "## Method diagnostics"
        line ""
        line "Per-input quantities a method reports about its own computation, over the explained inputs: NeFLAG's `mean_steps` (gradient evaluations per walk; the paper reports 1.66 to 1.93 at epsilon 0.1); a path method's `completeness_gap` |sum of the map - (f(x) - f(baseline))|, zero for the exact integral, so the quadrature's error in f's units (raise `steps` where it matters, or write `steps: auto`); with `steps: auto`, `quadrature_steps` (the points an input stopped at), `relative_completeness_gap` (the gap over |f(x) - f(baseline)|, what the tolerance bounds) and `tolerance_unmet` (1 for an input that reached `max_steps` with its gap above the tolerance, so its mean is the fraction of such inputs); a sampling method's `split_half_spearman` (rank agreement of the maps of its two halves of samples), `mc_standard_error` (root-mean-square Monte-Carlo standard error of the map's features, from the two halves) and `mc_relative_error` (that over the map's root mean square: 0.1 means the noise of the estimate is a tenth of the map's size)."
        line ""
        line "| method | target | diagnostic | mean | median | max |"
        line "|---|---|---|---:|---:|---:|"
        for id, target, name, mean, median, largest, _, _ in otherDiagnostics do line $"| {id} | {target} | {name} | {g4 mean} | {g4 median} | {g4 largest} |"
        let undefinedRows = otherDiagnostics |> List.filter (fun (_, _, _, _, _, _, undefined, _) -> undefined > 0)
        if not undefinedRows.IsEmpty then
            line ""
            for id, target, name, _, _, _, undefined, count in undefinedRows do
                line $"- `{id}` ({target}) `{name}`: undefined (NaN) for {undefined} of {count} inputs, left out of the row above (for `split_half_spearman`: a half whose map is constant, e.g. a probability saturated to 0 or 1, has no ranks)."
        match autoStepsLines spec output with
        | [] -> ()
        | lines ->
            line ""
            line "Integrated Gradients with `steps: auto` (16 points, doubled per input until the completeness gap is within the tolerance, at most `max_steps`):"
            line ""
            for l in lines do line l
    if not (Array.isEmpty r.RankAgreement) then
        line ""
        line "## Rank agreement"
        line ""
        line "Mean Spearman correlation between two methods' maps of the same input (the paper: 0.95 between SmoothGradSQ and FI without covariance, 0.13 with it)."
        line ""
        line "| method A | method B | mean Spearman | inputs |"
        line "|---|---|---:|---:|"
        for p in r.RankAgreement do line $"""| {p.A} | {p.B} | {withInterval f3 p.Spearman (Intervals.find "spearman" p.Intervals)} | {p.Inputs} |"""
    if not heatmapFiles.IsEmpty then
        line ""
        line "## Heatmaps"
        for f in heatmapFiles do
            if f.EndsWith ".html" then line $"- [{f}]({f}) (the same, as HTML)" else line $"![{f}]({f})"
    if not curveFiles.IsEmpty then
        line ""
        line "## Curves"
        for f in curveFiles do line $"![{f}]({f})"
    line ""
    line "Files: `metrics.json`, `metrics.csv`, `inputs.csv` (the explained inputs, labels and predictions), `spec.yaml` (as run), `plan.txt`, `environment.json`. `attribution export` writes each input's values for checking outside .NET."
    sb.ToString()

let metricsCsv (r: RunResult) =
    let sb = StringBuilder()
    sb.AppendLine "section,method,target,name,x,value" |> ignore
    let inv (x: float) = x.ToString("R", Globalization.CultureInfo.InvariantCulture)
    for mc in r.NegativePerturbation do
        let id, np = mc.Method, mc.Result
        for c in np.Curves do
            for x, y in Array.zip np.Fractions c.Values do sb.AppendLine $"negative_perturbation,{id},,{c.Name},{inv x},{inv y}" |> ignore
            sb.AppendLine $"negative_perturbation_auc,{id},,{c.Name},,{inv c.Auc}" |> ignore
        for i in Intervals.ofArray np.Intervals do
            sb.AppendLine $"negative_perturbation_auc,{id},,{i.Name}_ci95_low,,{inv i.Low}" |> ignore
            sb.AppendLine $"negative_perturbation_auc,{id},,{i.Name}_ci95_high,,{inv i.High}" |> ignore
    for p in r.RankAgreement do
        sb.AppendLine $"rank_agreement,{p.A},{p.B},spearman,,{inv p.Spearman}" |> ignore
        for i in Intervals.ofArray p.Intervals do
            sb.AppendLine $"rank_agreement,{p.A},{p.B},spearman_ci95_low,,{inv i.Low}" |> ignore
            sb.AppendLine $"rank_agreement,{p.A},{p.B},spearman_ci95_high,,{inv i.High}" |> ignore
    for m in r.Metrics do
        for v in m.Scalars do sb.AppendLine $"{m.Metric},{m.Method},,{v.Name},,{inv v.Value}" |> ignore
        for i in Intervals.ofArray m.Intervals do
            sb.AppendLine $"{m.Metric},{m.Method},,{i.Name}_ci95_low,,{inv i.Low}" |> ignore
            sb.AppendLine $"{m.Metric},{m.Method},,{i.Name}_ci95_high,,{inv i.High}" |> ignore
        for c in m.Curves do
            for x, y in Array.zip m.X c.Values do sb.AppendLine $"{m.Metric}_curve,{m.Method},,{c.Name},{inv x},{inv y}" |> ignore
    for c in r.LogSobolev do
        sb.AppendLine $"log_sobolev,{c.Method},{c.Target},mean_entropy,,{inv c.MeanEntropy}" |> ignore
        sb.AppendLine $"log_sobolev,{c.Method},{c.Target},mean_half_fisher,,{inv c.MeanHalfFisher}" |> ignore
        sb.AppendLine $"log_sobolev,{c.Method},{c.Target},holds_fraction,,{inv c.HoldsFraction}" |> ignore
    sb.AppendLine $"model,,,test_accuracy,,{inv r.Model.TestAccuracy}" |> ignore
    sb.ToString()

/// One row per explanation with a log-Sobolev estimate: which input (test-set index), method, target, Ent and I/2.
let private certificates (output: RunOutput) =
    let sb = StringBuilder()
    sb.AppendLine "test_index,method,target,entropy,half_fisher_information,holds" |> ignore
    let inv (x: float) = x.ToString("R", Globalization.CultureInfo.InvariantCulture)
    for KeyValue((id, target), d) in output.Diagnostics |> Seq.sortBy (fun kv -> kv.Key) do
        match d.TryGetValue "entropy", d.TryGetValue "half_fisher_information" with
        | (true, ent), (true, half) ->
            let e = ent.``to``(torch.ScalarType.Float64).data<float>().ToArray()
            let h = half.``to``(torch.ScalarType.Float64).data<float>().ToArray()
            for i in 0 .. e.Length - 1 do
                sb.AppendLine $"{output.Result.ExplainedIndices.[i]},{id},{targetName target},{inv e.[i]},{inv h.[i]},{e.[i] <= h.[i]}" |> ignore
        | _ -> ()
    sb.ToString()

/// A class's name by its index: a model may have more outputs than the data has named classes (an ImageNet model on
/// a few classes of a user's), and predict one of the others.
let private classNameOf (names: string list) (index: int64) =
    if index >= 0L && index < int64 names.Length then names.[int index] else $"output {index}"

let private imageHeatmaps (dir: string) (spec: Spec) (output: RunOutput) =
    let n = min spec.Report.HeatmapInputs output.Result.Explained
    if n = 0 || spec.Methods.IsEmpty then [] else
    let target = Plan.metricTarget spec
    use images = output.Inputs.Block(0, n)
    let h, w = int images.shape.[2], int images.shape.[3]
    let pixels (t: torch.Tensor) = t.sum([| 0L |]).``to``(torch.ScalarType.Float32).contiguous().data<float32>().ToArray()
    let rows =
        [ for i in 0 .. n - 1 ->
            let label = classNameOf output.ClassNames output.Labels.[i]
            let predicted = classNameOf output.ClassNames output.Predictions.[i]
            let maps = spec.Methods |> List.map (fun m -> pixels (output.Maps.[(m.Id, target)].Row i)) |> List.toArray
            // Three channels are shown in colour (R, G, B), any other number as their mean.
            let input =
                if images.shape.[1] = 3L then images.[int64 i].``to``(torch.ScalarType.Float32).contiguous().data<float32>().ToArray()
                else pixels (images.[int64 i] / float32 images.shape.[1])
            HeatmapRow($"{label} (pred {predicted})", input, maps, h, w) ]
    let titles = spec.Methods |> List.map (fun m -> m.Id)
    [ for view, file in [ HeatmapView.Absolute, "heatmaps-absolute.png"; HeatmapView.Signed, "heatmaps-signed.png" ] do
        HeatmapGrid.Render(Path.Combine(dir, file), titles, rows, view)
        yield file ]

/// One PNG per explained waveform and view: a row per method, the waveform drawn over its attribution.
let private audioHeatmaps (dir: string) (spec: Spec) (output: RunOutput) (waveforms: torch.Tensor) =
    let n = min spec.Report.HeatmapInputs output.Result.Explained
    let target = Plan.metricTarget spec
    let samples (t: torch.Tensor) = t.reshape(-1L).``to``(torch.ScalarType.Float32).contiguous().data<float32>().ToArray()
    [ for i in 0 .. n - 1 do
        let label = classNameOf output.ClassNames output.Labels.[i]
        let predicted = classNameOf output.ClassNames output.Predictions.[i]
        let wave = samples waveforms.[int64 i]
        let rows = [ for m in spec.Methods -> WaveformRow($"{m.Id}: '{label}' (pred '{predicted}'), explaining {targetName target}", wave, samples (output.Maps.[(m.Id, target)].Row i)) ]
        for view, suffix in [ HeatmapView.Absolute, "absolute"; HeatmapView.Signed, "signed" ] do
            let file = $"waveforms-{i}-{suffix}.png"
            WaveformHeatmap.Render(Path.Combine(dir, file), rows, view)
            yield file ]

/// One HTML page and one PNG per method: each explained text's words coloured by their score (the sum of the
/// word's embedding coordinates' scores, Gat et al. 2022, footnote 2).
let private textHeatmaps (dir: string) (spec: Spec) (output: RunOutput) (tokens: torch.Tensor) (lengths: torch.Tensor) (vocabulary: Attribution.Data.Vocabulary) =
    let n = min spec.Report.HeatmapInputs output.Result.Explained
    if n = 0 then [] else
    let target = Plan.metricTarget spec
    let ids = tokens.narrow(0L, 0L, int64 n).data<int64>().ToArray()
    let width = int tokens.shape.[1]
    let realLengths = lengths.narrow(0L, 0L, int64 n).data<int64>().ToArray()
    [ for m in spec.Methods do
        let maps = output.Maps.[(m.Id, target)]
        use shown = maps.Rows(0, n)
        use scores = Attribution.Methods.TokenScores.Sum(shown.reshape(int64 n, int64 width, -1L), lengths.narrow(0L, 0L, int64 n))
        let values = scores.``to``(torch.ScalarType.Float32).contiguous().data<float32>().ToArray()
        let texts =
            [ for i in 0 .. n - 1 do
                let count = int realLengths.[i]
                let words = [| for t in 0 .. count - 1 -> vocabulary.TokenOf ids.[i * width + t] |]
                let wordScores = values.[i * width .. i * width + count - 1]
                yield TokenHighlight(words, wordScores, classNameOf output.ClassNames output.Labels.[i], classNameOf output.ClassNames output.Predictions.[i], $"{m.Id}, explaining {targetName target}") ]
        let safe = RegularExpressions.Regex.Replace(m.Id, "[^A-Za-z0-9_.-]", "_")
        TokenHeatmapHtml.Render(Path.Combine(dir, $"tokens-{safe}.html"), $"{spec.Name}: {m.Id}", texts)
        TokenHeatmapPng.Render(Path.Combine(dir, $"tokens-{safe}.png"), $"{spec.Name}: {m.Id}", texts)
        yield $"tokens-{safe}.png"
        yield $"tokens-{safe}.html" ]

/// One bar chart per explained tabular input: its most attributed features, a bar per method.
let private featureBars (dir: string) (spec: Spec) (output: RunOutput) (features: string list) =
    let n = min spec.Report.HeatmapInputs output.Result.Explained
    let target = Plan.metricTarget spec
    let row (t: torch.Tensor) = t.reshape(-1L).``to``(torch.ScalarType.Float32).contiguous().data<float32>().ToArray()
    use inputs = output.Inputs.Block(0, n)
    [ for i in 0 .. n - 1 do
        let label = classNameOf output.ClassNames output.Labels.[i]
        let predicted = classNameOf output.ClassNames output.Predictions.[i]
        let methods = [| for m in spec.Methods -> struct (m.Id, row (output.Maps.[(m.Id, target)].Row i)) |]
        let file = $"features-{i}.png"
        FeatureBars.Render(Path.Combine(dir, file), $"input {i}: '{label}' (pred '{predicted}'), explaining {targetName target}",
                           Array.ofList features, row inputs.[int64 i], methods)
        yield file ]

/// Pictures of the explained inputs with every method's map, in the modality's own form.
let private heatmaps (dir: string) (spec: Spec) (output: RunOutput) =
    match output.View with
    | Domain.TabularView features -> featureBars dir spec output features
    | Domain.ImageView -> imageHeatmaps dir spec output
    | Domain.AudioView(waveforms, _) -> audioHeatmaps dir spec output waveforms
    | Domain.TextView(tokens, lengths, vocabulary) -> textHeatmaps dir spec output tokens lengths vocabulary

/// One PNG per metric and curve name, a series per method.
let private metricCurves (dir: string) (r: RunResult) =
    [ for metric, results in r.Metrics |> Array.groupBy (fun m -> m.Metric) do
        let names = results |> Array.collect (fun m -> m.Curves |> Array.map (fun c -> c.Name)) |> Array.distinct
        for name in names do
            let series =
                [ for m in results do
                    match m.Curves |> Array.tryFind (fun c -> c.Name = name) with
                    | Some c when c.Values.Length = m.X.Length && c.Values.Length > 0 ->
                        let label = if Double.IsNaN c.Auc then m.Method else $"{m.Method} (AUC {f3 c.Auc})"
                        yield CurveSeries(label, m.X, c.Values)
                    | _ -> () ]
            if not series.IsEmpty then
                let file = $"curve-{metric}-{name}.png" |> fun f -> RegularExpressions.Regex.Replace(f, "[^A-Za-z0-9_.-]", "_")
                CurvePlot.Render(Path.Combine(dir, file), $"{metric}: {name}", results.[0].XLabel, name, series)
                yield file ]

let private curves (dir: string) (r: RunResult) =
    if Array.isEmpty r.NegativePerturbation then metricCurves dir r else
    let names = r.NegativePerturbation |> Array.collect (fun mc -> mc.Result.Curves |> Array.map (fun c -> c.Name)) |> Array.distinct
    [ for name in names do
        let series =
            [ for mc in r.NegativePerturbation do
                let id, np = mc.Method, mc.Result
                match np.Curves |> Array.tryFind (fun c -> c.Name = name) with
                | Some c -> yield CurveSeries($"{id} (AUC {f2 c.Auc})", np.Fractions, c.Values)
                | None -> () ]
        let file = $"curve-{name}.png"
        CurvePlot.Render(Path.Combine(dir, file), $"Negative perturbation: {name}", "fraction of features masked (least important first)", "%", series)
        yield file
      yield! metricCurves dir r ]

/// Writes the run's folder as run `runId` (RunFolder.publish) and returns its path, `{output}/{name}/{run id}`.
let writeRun (plan: Plan.Plan) (specText: string) (output: RunOutput) (env: RunEnvironment.EnvironmentRecord) (runId: string) =
    RunFolder.publish plan.Spec.Output plan.Spec.Name runId (fun staging ->
        let heatmapFiles = heatmaps staging plan.Spec output
        let curveFiles = curves staging output.Result
        AtomicFile.WriteAllText(Path.Combine(staging, "spec.yaml"), specText)
        AtomicFile.WriteAllText(Path.Combine(staging, "plan.txt"), Plan.describe plan + "\n")
        AtomicFile.WriteAllText(Path.Combine(staging, "environment.json"), JsonSerializer.Serialize(env, json))
        AtomicFile.WriteAllText(Path.Combine(staging, "metrics.json"), JsonSerializer.Serialize(output.Result, summaryJson))
        AtomicFile.WriteAllText(Path.Combine(staging, InputRecord.FileName), InputRecord.render output.Result.ExplainedIndices output.Labels output.Predictions)
        AtomicFile.WriteAllText(Path.Combine(staging, "metrics.csv"), metricsCsv output.Result)
        if not (Array.isEmpty output.Result.LogSobolev) then
            AtomicFile.WriteAllText(Path.Combine(staging, "certificates.csv"), certificates output)
        let report = markdown plan output env heatmapFiles curveFiles
        AtomicFile.WriteAllText(Path.Combine(staging, "report.md"), report)
        AtomicFile.WriteAllText(Path.Combine(staging, "report.html"), ReportHtml.render plan.Spec.Name report))

/// Writes the run's folder under a new run id and returns its path.
let write (plan: Plan.Plan) (specText: string) (output: RunOutput) (env: RunEnvironment.EnvironmentRecord) =
    writeRun plan specText output env (RunFolder.newRunId ())
