// A sweep written as ordinary F#: SmoothGrad and FI without covariance at five noise levels, on the quickstart's model
// (same data, architecture, epochs and seed: the model step comes from the cache), scored by negative perturbation
// (Gat et al. 2022, Sec. 5.2). One spec holds every level, so the plan shares the model and the explained inputs.
//   dotnet fsi experiments/noise-sweep.fsx      (after `dotnet build src/Experiments.FSharp -c Release`)
#load "toolkit.fsx"
open Experiments

let levels = [ 0.05; 0.1; 0.15; 0.2; 0.3 ]

// Samples per level: noisier levels need more for the maps to settle. Each count gives a mean split-half Spearman of
// 0.9 or more (the report's method diagnostics; the quickstart's rule), measured on these 100 images, 2026-12-03:
// at 100/256 samples every level up to 0.15 passed (SmoothGrad 0.98, 0.96, 0.93; FI 0.99, 0.95, 0.93), 0.2 and 0.3
// did not (SmoothGrad 0.89, 0.84; FI 0.89, 0.89), hence the counts below for them.
let smoothGradSamples s = if s >= 0.3 then 256 elif s >= 0.2 then 150 else 100
let fisherSamples s = if s >= 0.3 then 512 elif s >= 0.2 then 320 else 256

let sweep =
    Dsl.spec "noise-sweep"
    |> Dsl.withSeed 7
    |> Dsl.withExplainCount 100
    |> Dsl.withEpochs 8
    |> Dsl.withTargets [ Predicted ]
    |> Dsl.withMethods
        [ for s in levels do
            yield Dsl.smoothGrad |> Dsl.withSamples (smoothGradSamples s) |> Dsl.withSampler (IsotropicGaussian s) |> Dsl.withId $"sg_{s}"
            yield Dsl.functionalInformation |> Dsl.withSamples (fisherSamples s) |> Dsl.withSampler (IsotropicGaussian s) |> Dsl.withId $"fi_nu_{s}" ]
    |> Dsl.withMetrics [ Dsl.negativePerturbation ]
    |> Dsl.withHeatmapInputs 4

if Toolkit.planOnly then printfn "%s" (Plan.describe (Experiment.plan sweep))
else
    let result, folder = Experiment.runAndReport sweep
    let auc (id: string) =
        result.NegativePerturbation |> Array.find (fun m -> m.Method = id) |> fun m -> m.Result.Curves |> Array.find (fun c -> c.Name = "consistency") |> _.Auc
    printfn "negative-perturbation consistency AUC (percent x fraction, at most 80):"
    printfn "%8s  %10s  %10s" "stdev" "SmoothGrad" "FI (nu)"
    for s in levels do printfn "%8.2f  %10.2f  %10.2f" s (auc $"sg_{s}") (auc $"fi_nu_{s}")
    printfn "report: %s/report.md" folder
