/// The model-parameter randomisation check (Adebayo et al. 2018) on the first inputs: the method explains again as the
/// model's stages are randomised from the output, and each stage's maps are compared with the trained model's.
module Experiments.MetricRuns.ParameterRandomisation

open TorchSharp
open Attribution.Models
open Experiments.Results
open Experiments.MetricRuns.MetricRun

/// The cascade on the first `count` inputs: SSIM and Spearman against the trained model's maps at each stage.
let evaluate (run: MetricRun) (count: int) =
    let n = min count (int run.Inputs.shape.[0])
    // Seen through an identity view, any layered model fits the cascade's generic signature.
    let shape = run.Inputs.shape |> Array.skip 1
    let view (network: torch.nn.Module<Tensor, Tensor>) : ReshapedModel =
        match box network with
        | :? ILayeredModel -> new ReshapedModel(network, shape, shape)
        | _ -> failwith $"parameter_randomisation needs a model that can be cut into stages; {network.GetType().Name} cannot"
    let stages =
        Attribution.Metrics.ParameterRandomisation().Run<ReshapedModel>(view run.Model, (fun () -> view (run.Domain.NewModel())), run.Explainer,
                                                                      run.Inputs.narrow(0L, 0L, int64 n).``to``(run.Device), run.Targets.narrow(0L, 0L, int64 n).``to``(run.Device),
                                                                      run.ExplainOptions, run.Seed)
        |> Seq.toArray
    let last = Array.last stages
    result run [| value "final_ssim" last.MeanSsim; value "final_spearman" last.MeanSpearman |]
           ("stages randomised from the output: " + (stages |> Array.map (fun s -> s.Stage) |> String.concat ", ")) (Array.init stages.Length (fun i -> float (i + 1)))
           [| { Name = "ssim"; Values = stages |> Array.map (fun s -> s.MeanSsim); Auc = nan }
              { Name = "spearman"; Values = stages |> Array.map (fun s -> s.MeanSpearman); Auc = nan } |]
    // final_spearman is the mean over the inputs whose correlation is defined, so its interval resamples those
    |> withIntervals run [ "final_ssim", last.Ssim; "final_spearman", last.Spearman |> Array.filter (System.Double.IsNaN >> not) ]
    |> withPerInput
        [ for k, s in Array.indexed stages do
            yield { Name = $"ssim/{s.Stage}"; Values = s.Ssim; Summarises = $"curve ssim at {k}"; Reduction = PerInputs.Mean }
            yield { Name = $"spearman/{s.Stage}"; Values = s.Spearman; Summarises = $"curve spearman at {k}"; Reduction = PerInputs.MeanOfDefined } ]
