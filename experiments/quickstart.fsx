// The quickstart (experiments/quickstart.yaml) as F# values: the same spec, the same plan, the same numbers.
//   dotnet fsi experiments/quickstart.fsx       (after `dotnet build src/Experiments.FSharp -c Release`)
#load "toolkit.fsx"
open Experiments

let quickstart =
    Dsl.spec "quickstart"
    |> Dsl.withSeed 7
    |> Dsl.withExplainCount 100
    |> Dsl.withEpochs 8
    |> Dsl.withMethods
        [ Dsl.saliency
          Dsl.integratedGradients |> Dsl.withSteps 32
          Dsl.smoothGrad |> Dsl.withSamples 100
          Dsl.functionalInformation |> Dsl.withId "fi_nu" |> Dsl.withSamples 256 |> Dsl.withSampler (IsotropicGaussian 0.15)
          Dsl.functionalInformation |> Dsl.withId "fi_sigma" |> Dsl.withSamples 32 ]
    |> Dsl.withHeatmapInputs 6

if Toolkit.planOnly then printfn "%s" (Plan.describe (Experiment.plan quickstart))
else
    let result, folder = Experiment.runAndReport quickstart
    for m in result.NegativePerturbation do
        let auc = m.Result.Curves |> Array.map (fun c -> $"{c.Name} {c.Auc:F2}") |> String.concat ", "
        printfn "%-10s %s" m.Method auc
    printfn "report: %s/report.md" folder
