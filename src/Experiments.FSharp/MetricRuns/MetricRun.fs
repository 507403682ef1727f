/// What a per-method metric is evaluated on (one method's maps of the explained class, with the model, the inputs and
/// the data set behind them), and the pieces every metric's result is built from: scalars, curves, bootstrap intervals
/// over the inputs and each input's values. Each shipped metric's evaluation is one file beside this one.
module Experiments.MetricRuns.MetricRun

open System
open System.Collections.Generic
open TorchSharp
open Attribution
open Attribution.Metrics
open Attribution.Methods
open Attribution.Runtime
open Experiments
open Experiments.Building
open Experiments.Plan
open Experiments.Results
open Experiments.Running
open Experiments.InputRows

type Tensor = torch.Tensor

/// One metric on one method's maps of the explained class.
type MetricRun =
    { Plan: Plan
      Step: Step
      Metric: MetricSpec
      Kind: MethodKind
      /// The explained model (the output the spec explains).
      Model: torch.nn.Module<Tensor, Tensor>
      /// The model as the attribution steps explain it, in the spec's precision (the Model itself but for bf16): what
      /// a metric explains with when its maps must match the stored ones (ROAR's training maps).
      Explaining: torch.nn.Module<Tensor, Tensor>
      /// The explained inputs as the methods see them, read a block at a time.
      Inputs: InputRows
      /// The method's maps, read a block of inputs at a time; None before they are stored whole (a shard of the first
      /// wave, for the metrics that explain again and read no stored maps).
      Maps: StoredMaps option
      /// The explained class of each input, as numbers and as a tensor.
      Classes: int64[]
      Targets: Tensor
      Labels: int64[]
      /// Ground-truth boxes of the explained inputs, where the data set has them.
      Boxes: IReadOnlyList<Attribution.Data.IRegion> option
      Context: MethodContext
      Domain: Domain.Domain
      /// The trained network (the explained model wraps it).
      Network: torch.nn.Module<Tensor, Tensor>
      /// The explained inputs' rows in the test set.
      Rows: int64[]
      Device: torch.Device }

    /// The method's stored maps; a metric that reads them is only run once they are stored whole.
    member r.Stored =
        r.Maps |> Option.defaultWith (fun () -> failwith $"{r.Step.Name}: the maps of {List.head r.Step.Methods} are not stored whole yet")
    /// How many inputs were explained.
    member r.Count = r.Inputs.Count
    /// The metric's yaml name.
    member r.Name = Catalogue.metricName r.Metric
    /// The method's id.
    member r.Method = List.head r.Step.Methods
    /// The metric's seed: its noise, masks and tie-breaks derive from the spec's seed and its name.
    member r.Seed = Seeds.Derive(int64 r.Plan.Spec.Seed, r.Name)
    /// The options the method explains with (for metrics that explain again: randomised models, longer inputs).
    member r.ExplainOptions = AttributionSteps.optionsOf r.Plan r.Kind
    /// The method as the spec configures it.
    member r.Explainer = methodOf r.Kind r.Context

/// Inputs per block when a metric reads a step's maps block by block: a multiple of every chunk size the engine's metric
/// batches by (`chunks`), near `target`, so that each block's chunks are the chunks of the whole set and the numbers
/// are those of the whole set at once.
let alignedBlock (chunks: int64 list) (target: int) =
    let rec gcd (a: int64) (b: int64) = if b = 0L then a else gcd b (a % b)
    let lcm = chunks |> List.fold (fun acc c -> acc / gcd acc c * c) 1L
    int (lcm * max 1L (int64 target / lcm))

let value name v : NamedValue = { Name = name; Value = v }

/// A result with its scalars and curves; intervals and per-input values are added by the functions below.
let result (run: MetricRun) scalars xLabel x curves : MetricResult =
    { Metric = run.Name; Method = run.Method; Scalars = scalars; XLabel = xLabel; X = x; Curves = curves; Intervals = [||]; PerInput = [||] }

/// The mean of curves of equal length, point by point.
let meanCurve (rows: double[][]) =
    if rows.Length = 0 then [||] else Array.init rows.[0].Length (fun j -> rows |> Array.averageBy (fun r -> r.[j]))

/// Each input's values behind the reported ones (Results.PerInput), for `attribution export`.
let withPerInput (values: PerInput list) (r: MetricResult) = { r with PerInput = Array.append r.PerInput (Array.ofList values) }

/// Intervals of scalars that are means over inputs, from the per-input values (name, values).
let withIntervals (run: MetricRun) (perInput: (string * float[]) list) (r: MetricResult) =
    { r with Intervals = [| for n, values in perInput -> Intervals.ofInputs run.Plan.Spec.Seed $"{run.Name}/{run.Method}" n values |] }

/// The interval of a statistic of the inputs that is not a plain mean over them, by resampling the inputs.
let withStatistic (run: MetricRun) (scalar: string) (count: int) (statistic: int[] -> float) (r: MetricResult) =
    let ci = Bootstrap.StatisticInterval(count, Func<int[], float> statistic, Seeds.Derive(int64 run.Plan.Spec.Seed, $"bootstrap/{run.Name}/{run.Method}/{scalar}"))
    { r with Intervals = Array.append r.Intervals [| Intervals.named scalar ci |] }

/// One input's correlation at each point of a correlation curve (undefined where either side is constant).
let correlationsPerPoint (label: string) (x: float[]) (correlations: float[][]) =
    [ for k, row in Array.indexed correlations ->
        { Name = $"correlation/{label}={x.[k].ToString(Globalization.CultureInfo.InvariantCulture)}"; Values = row
          Summarises = $"curve correlation at {k}"; Reduction = PerInputs.MeanOfDefined } ]

/// Text: the model and the explained rows' tokens and real lengths.
let textOf (run: MetricRun) =
    match run.Domain.View run.Rows, run.Network with
    | Domain.TextView(tokens, lengths, _), (:? Attribution.Models.TextModel as text) -> text, tokens, lengths
    | _ -> failwith "token metrics need a text dataset and a text model"

/// A block of texts: their tokens, real lengths and each token's score (the sum over its embedding coordinates).
let tokenBlock (tokens: Tensor) (lengths: Tensor) (first: int) (n: int) (maps: Tensor) =
    let t, l = tokens.narrow(0L, int64 first, int64 n), lengths.narrow(0L, int64 first, int64 n)
    t, l, TokenScores.Sum(maps.reshape(int64 n, tokens.shape.[1], -1L), l)

/// Audio: a block of clips seen as 25 ms frames (the explained view's frames), a frame removed by setting it to silence.
let frameSpace (run: MetricRun) (inputs: Tensor) = FrameSpace(run.Model, inputs, 0.0, run.Device)

/// A block of inputs (read from the data set: a new tensor, which the caller disposes) and their explained classes.
let inputsOf (run: MetricRun) (first: int) (n: int) = run.Inputs.Block(first, n)
let targetsOf (run: MetricRun) (first: int) (n: int) = run.Targets.narrow(0L, int64 first, int64 n)

/// The method's options for a block of inputs that it explains again: each input draws its noise by its position
/// among the explained inputs, as one call over all of them would, so a block's maps do not depend on the blocking.
let keyedOptionsOf (run: MetricRun) (first: int) (n: int) =
    let options = run.ExplainOptions
    ExplainOptions(Output = options.Output, BatchSize = options.BatchSize, Seed = options.Seed, InputKeys = Array.init n (fun i -> int64 (first + i)))
