/// What the steps of a run share: the run's output for the report, the engine's settings of a spec, the engine's
/// method of a method kind, and the check for non-finite numbers.
module Experiments.Running

open System
open System.Collections.Generic
open System.Diagnostics
open System.IO
open TorchSharp
open Attribution
open Attribution.Data
open Attribution.Methods
open Attribution.Metrics
open Attribution.Models
open Attribution.Runtime
open Attribution.Sampling
open Experiments
open Experiments.Plan
open Experiments.Results
open Experiments.Building

type Tensor = torch.Tensor

/// Everything the report needs: results plus the tensors to draw.
type RunOutput =
    { Result: RunResult
      /// Explained inputs as methods saw them [N, C, H, W] (images themselves; see Domain), read a block at a time;
      /// their labels and predictions.
      Inputs: InputRows.InputRows
      Labels: int64[]
      Predictions: int64[]
      ClassNames: string list
      /// How the explained inputs are shown to a person.
      View: Domain.InputView
      /// Maps per method id and target, as stored in the cache (read in blocks).
      Maps: IReadOnlyDictionary<string * TargetKind, StoredMaps>
      /// Per-input diagnostics (e.g. the log-Sobolev estimates) per method id and target (CPU).
      Diagnostics: IReadOnlyDictionary<string * TargetKind, IDictionary<string, Tensor>>
      Device: string }

let targetName = function GroundTruth -> "ground_truth" | Predicted -> "predicted"

/// The engine's output function for a spec's `explain.output`.
let outputOf (spec: Spec) =
    match spec.Explain.Output with
    | Probability -> Attribution.Methods.OutputFunction.Probability
    | Logit -> Attribution.Methods.OutputFunction.Logit

let deviceRequest = function Auto -> DeviceRequest.Auto | Cpu -> DeviceRequest.Cpu | Cuda -> DeviceRequest.Cuda

/// The hash of the dataset's content, for the plan.
let dataHash (spec: Spec) = DataSources.dataHash spec

/// Rows of a tensor [N, ...] that hold a NaN or an infinity.
let nonFiniteRows (t: Tensor) : int64[] =
    use scope = torch.NewDisposeScope()
    t.isfinite().logical_not().reshape(t.shape.[0], -1L).any(1L).nonzero().reshape(-1L).cpu().data<int64>().ToArray()

let someOf (keys: int64[]) =
    let shown = keys |> Array.truncate 10 |> Array.map string |> String.concat ", "
    if keys.Length > 10 then shown + ", ..." else shown


/// The engine's method for a spec's method kind (its registry entry builds it).
let methodOf (kind: MethodKind) (context: MethodContext) : IAttributionMethod = MethodRegistry.build context kind

/// Inputs per call of a method: bounds memory (maps, running sums) and paces the progress lines. Each call's maps are
/// kept in a part file until the whole step is stored, so an interrupted step resumes at its first missing call.
/// Methods that spend seconds on an input (per-input optimisations, walks, sampled surrogates) are called on fewer
/// inputs so that progress and parts come every few minutes; every method's map of an input is independent of its
/// batch (the conformance tests), so the size changes no number.
let inputsPerCall (kind: MethodKind) = (MethodRegistry.facts kind).InputsPerCall

/// CUDA's TF32 switches for matrix products and convolutions set to follow `precision` (fp32 switches TF32 off, which
/// libtorch's cuDNN default would not); nothing on another device.
let followPrecisionOnCuda (precision: Precision) (device: torch.Device) =
    if device.``type`` = DeviceType.CUDA then
        torch.backends.cuda.matmul.allow_tf32 <- (precision = Tf32)
        torch.backends.cudnn.allow_tf32 <- (precision = Tf32)
