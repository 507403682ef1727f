/// The model-parameter randomisation check (Adebayo et al. 2018) on the first inputs: the method explains again as the
/// model's stages are randomised from the output, and each stage's maps are compared with the trained model's. The
/// cascade runs a block of inputs at a time (MetricBlocks: stored as parts, shared out by shards): every block
/// randomises its own copy of the model alike (each stage from a generator seeded by the stage), and each input draws
/// its noise by its position among the explained inputs, as one call over all of them would, so a block's numbers do
/// not depend on who computed it.
module Experiments.MetricRuns.ParameterRandomisation

open TorchSharp
open Attribution.Metrics
open Attribution.Models
open Experiments
open Experiments.Results
open Experiments.MetricRuns.MetricRun

/// A block's cascade as its part in the cache holds it: the stages, output first, and per stage each input's SSIM
/// and Spearman correlation against its map on the trained model.
type CascadePart = { Stages: string[]; Ssim: float[][]; Spearman: float[][] }

/// Inputs per block: the method's call (50 inputs, 10 for the methods that spend seconds on an input), the unit in
/// which shards share out its attribution step too. Smaller blocks would spread a slow method's cascade over more
/// shards but cost one process more: an input a block took Extremal Perturbations' cascade on 10 canvases 272 s
/// against 100 s in one call, which batches its optimisation over the inputs.
let private blockSize (run: MetricRun) = Running.inputsPerCall run.Kind

/// The cascade on the first `count` inputs, a block at a time.
let private pass (run: MetricRun) (count: int) : MetricBlocks.Pass<CascadePart> =
    // Seen through an identity view, any layered model fits the cascade's generic signature.
    let shape = run.Inputs.Shape |> Array.skip 1
    let view (network: torch.nn.Module<Tensor, Tensor>) : ReshapedModel =
        match box network with
        | :? ILayeredModel -> new ReshapedModel(network, shape, shape)
        | _ -> failwith $"parameter_randomisation needs a model that can be cut into stages; {network.GetType().Name} cannot"
    let write, read = MetricBlocks.json id id
    let compute (first: int) (n: int) =
        use inputs = inputsOf run first n
        use onDevice = inputs.``to``(run.Device)
        let stages =
            Attribution.Metrics.ParameterRandomisation().Run<ReshapedModel>(view run.Model, (fun () -> view (run.Domain.NewModel())), run.Explainer,
                                                                            onDevice, (targetsOf run first n).``to``(run.Device),
                                                                            keyedOptionsOf run first n, run.Seed)
            |> Seq.toArray
        { Stages = stages |> Array.map _.Stage; Ssim = stages |> Array.map _.Ssim; Spearman = stages |> Array.map _.Spearman }
    { Name = "cascade"; Size = blockSize run; Inputs = Some count; TieBreakSlots = 0L; ReadsMaps = false
      Compute = (fun first n _ _ -> compute first n); Write = write; Read = read }

/// The pass as a shard shares its blocks out.
let shared (run: MetricRun) (count: int) = [ MetricBlocks.shared run (pass run count) ]

/// The cascade on the first `count` inputs: SSIM and Spearman against the trained model's maps at each stage.
let evaluate (run: MetricRun) (count: int) =
    let parts = MetricBlocks.all run (pass run count)
    let names = parts.[0].Stages
    match parts |> Array.tryFind (fun p -> p.Stages <> names) with
    | Some p ->
        let listed (stages: string[]) = String.concat ", " stages
        failwith $"parameter_randomisation: blocks randomised different stages ({listed names} against {listed p.Stages})"
    | None -> ()
    let stages =
        names |> Array.mapi (fun k name ->
            RandomisationStage(name, names.[..k], parts |> Array.collect (fun p -> p.Ssim.[k]), parts |> Array.collect (fun p -> p.Spearman.[k])))
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
