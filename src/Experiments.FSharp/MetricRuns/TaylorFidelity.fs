/// Taylor fidelity (the Taylor framework): how far a method's map is from the model's first-order and higher-order
/// independent and interactive Taylor terms, on the first inputs.
module Experiments.MetricRuns.TaylorFidelity

open TorchSharp
open Experiments.Results
open Experiments.MetricRuns.MetricRun

/// The errors on the first `count` inputs, each relative to its term's scale.
let evaluate (run: MetricRun) (count: int) =
    let n = min count (int run.Inputs.shape.[0])
    // The spec's output function: a ReLU network's logit is piecewise linear, so its second-order terms vanish.
    use report = Attribution.Metrics.TaylorFidelity.Assess(run.Explainer, run.Model, run.Inputs.narrow(0L, 0L, int64 n).``to``(run.Device),
                                                           run.Targets.narrow(0L, 0L, int64 n).``to``(run.Device), run.ExplainOptions)
    let mean (t: Tensor) = t.``to``(torch.ScalarType.Float64).mean().item<float>()
    let relative (e: Tensor) (scale: Tensor) = e.``to``(torch.ScalarType.Float64) / scale.``to``(torch.ScalarType.Float64).clamp_min(1e-12)
    let perInput =
        [ "approximation_error", report.ApproximationError
          "independent_error_relative", relative report.IndependentError report.IndependentScale
          "interactive_error_relative", relative report.InteractiveError report.InteractiveScale ]
    let values (t: Tensor) = t.``to``(torch.ScalarType.Float64).cpu().contiguous().data<float>().ToArray()
    result run [| for name, t in perInput do yield value name (mean t)
                  yield value "inputs" (float n) |] "" [||] [||]
    |> withIntervals run [ for name, t in perInput -> name, values t ]
    |> withPerInput (perInput |> List.map (fun (name, t) -> PerInputs.ofScalar name (values t)))
