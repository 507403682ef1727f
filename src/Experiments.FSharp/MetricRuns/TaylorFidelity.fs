/// Taylor fidelity (the Taylor framework): how far a method's map is from the model's first-order and higher-order
/// independent and interactive Taylor terms, on the first inputs. It runs an input at a time (MetricBlocks: stored as
/// parts, shared out by shards): each input costs d Hessian-vector products and holds its d x d Hessian, so one input a
/// block bounds the memory to one Hessian. Each input draws its noise by its position among the explained inputs, as
/// one call over all of them would.
module Experiments.MetricRuns.TaylorFidelity

open TorchSharp
open Experiments.Results
open Experiments.MetricRuns.MetricRun

/// A block's errors and scales, per input, as its part in the cache holds them.
type TermsPart =
    { ApproximationError: float[]
      IndependentError: float[]
      IndependentScale: float[]
      InteractiveError: float[]
      InteractiveScale: float[] }

let private valuesOf (t: Tensor) = t.``to``(torch.ScalarType.Float64).cpu().contiguous().data<float>().ToArray()

/// The assessment of the first `count` inputs, an input a block.
let private pass (run: MetricRun) (count: int) : MetricBlocks.Pass<TermsPart> =
    let write, read = MetricBlocks.json id id
    let compute (first: int) (n: int) =
        // The spec's output function: a ReLU network's logit is piecewise linear, so its second-order terms vanish.
        use inputs = inputsOf run first n
        use onDevice = inputs.``to``(run.Device)
        use report = Attribution.Metrics.TaylorFidelity.Assess(run.Explainer, run.Model, onDevice,
                                                               (targetsOf run first n).``to``(run.Device), keyedOptionsOf run first n)
        { ApproximationError = valuesOf report.ApproximationError
          IndependentError = valuesOf report.IndependentError; IndependentScale = valuesOf report.IndependentScale
          InteractiveError = valuesOf report.InteractiveError; InteractiveScale = valuesOf report.InteractiveScale }
    { Name = "taylor"; Size = 1; Inputs = Some count; TieBreakSlots = 0L; ReadsMaps = false
      Compute = (fun first n _ _ -> compute first n); Write = write; Read = read }

/// The pass as a shard shares its blocks out.
let shared (run: MetricRun) (count: int) = [ MetricBlocks.shared run (pass run count) ]

/// The errors on the first `count` inputs, each relative to its term's scale.
let evaluate (run: MetricRun) (count: int) =
    let parts = MetricBlocks.all run (pass run count)
    let gather (field: TermsPart -> float[]) = parts |> Array.collect field
    let relative (errors: float[]) (scales: float[]) = Array.map2 (fun e s -> e / max s 1e-12) errors scales
    let perInput =
        [ "approximation_error", gather _.ApproximationError
          "independent_error_relative", relative (gather _.IndependentError) (gather _.IndependentScale)
          "interactive_error_relative", relative (gather _.InteractiveError) (gather _.InteractiveScale) ]
    result run [| for name, values in perInput do yield value name (Array.average values)
                  yield value "inputs" (float (gather _.ApproximationError).Length) |] "" [||] [||]
    |> withIntervals run perInput
    |> withPerInput (perInput |> List.map (fun (name, values) -> PerInputs.ofScalar name values))
