/// What a run produced, as plain serialisable records (arrays, not lists: System.Text.Json reads them back).
module Experiments.Results

open System

type ModelInfo =
    { Source: string
      TestAccuracy: float
      TrainingSeconds: float
      EpochLosses: float[]
      Parameters: int64 }

type Curve = { Name: string; Values: float[]; Auc: float }

/// A 95% percentile-bootstrap interval over the explained inputs (Attribution.Metrics.Bootstrap, seeded) of one of a
/// result's values: a scalar's or a curve's AUC, by name. Results cached before intervals existed have none (null).
type Interval = { Name: string; Low: float; High: float; Inputs: int }

/// The values of one explained input behind a reported value: `Values.[i]` belongs to the i-th explained input (the
/// order of RunResult.ExplainedIndices; a metric that looks at the first n inputs only has n values), NaN where the
/// value is undefined for that input. `Summarises` names the reported value they reduce to, "scalar NAME", "auc NAME"
/// (a curve's area) or "curve NAME at I" (the I-th point of a curve), or is empty; `Reduction` says how: "mean", or
/// "mean of defined" (NaN left out). They are kept in the cache (what `attribution export` writes out), not in
/// metrics.json. Results cached before they existed have none (null).
type PerInput = { Name: string; Values: float[]; Summarises: string; Reduction: string }

type NegativePerturbationResult = { Fractions: float[]; Curves: Curve[]; Intervals: Interval[]; PerInput: PerInput[] }

/// One method's negative-perturbation result.
type MethodCurves = { Method: string; Result: NegativePerturbationResult }

type NamedValue = { Name: string; Value: float }

/// A per-method metric beyond negative perturbation: named scalars, and curves over a shared x axis.
type MetricResult =
    { Metric: string
      Method: string
      Scalars: NamedValue[]
      XLabel: string
      X: float[]
      Curves: Curve[]
      Intervals: Interval[]
      PerInput: PerInput[] }

module Intervals =
    /// The intervals of a result (none for one cached before they existed).
    let ofArray (intervals: Interval[]) = if obj.ReferenceEquals(intervals, null) then [||] else intervals

    /// The interval of the value called `name`, if there is one.
    let find (name: string) (intervals: Interval[]) = ofArray intervals |> Array.tryFind (fun i -> i.Name = name)

    /// The engine's interval under a result's name.
    let named (name: string) (ci: Attribution.Metrics.ConfidenceInterval) = { Name = name; Low = ci.Low; High = ci.High; Inputs = ci.Count }

    /// The bootstrap interval of the mean of per-input values, seeded by the spec's seed and what it is of.
    let ofInputs (seed: int) (what: string) (name: string) (values: float[]) =
        named name (Attribution.Metrics.Bootstrap.MeanInterval(values, Attribution.Runtime.Seeds.Derive(int64 seed, $"bootstrap/{what}/{name}")))

module PerInputs =
    [<Literal>]
    let Mean = "mean"

    /// The mean over the inputs whose value is defined (not NaN).
    [<Literal>]
    let MeanOfDefined = "mean of defined"

    /// The per-input values of a result (none for one cached before they existed).
    let ofArray (values: PerInput[]) = if obj.ReferenceEquals(values, null) then [||] else values

    /// Values whose mean is the scalar of the same name.
    let ofScalar (name: string) (values: float[]) = { Name = name; Values = values; Summarises = $"scalar {name}"; Reduction = Mean }

    /// The values reduced as `Reduction` says (NaN when none is defined).
    let reduce (p: PerInput) =
        let used = if p.Reduction = MeanOfDefined then p.Values |> Array.filter (Double.IsNaN >> not) else p.Values
        if used.Length = 0 then nan else Array.average used

    /// The reported value `p.Summarises` names, among a result's scalars and curves; None when it names none.
    let reported (scalars: NamedValue[]) (curves: Curve[]) (p: PerInput) : float option =
        let kind, rest = match p.Summarises.Split(' ', 2) with [| k; r |] -> k, r | _ -> "", ""
        match kind with
        | "scalar" -> scalars |> Array.tryFind (fun s -> s.Name = rest) |> Option.map _.Value
        | "auc" -> curves |> Array.tryFind (fun c -> c.Name = rest) |> Option.map _.Auc
        | "curve" ->
            let at = rest.LastIndexOf " at "
            if at < 0 then None
            else
                let name, index = rest.Substring(0, at), rest.Substring(at + 4)
                curves |> Array.tryFind (fun c -> c.Name = name)
                |> Option.bind (fun c -> match Int32.TryParse index with | true, i when i >= 0 && i < c.Values.Length -> Some c.Values.[i] | _ -> None)
        | _ -> None

/// Two methods' mean Spearman correlation over inputs, with its bootstrap interval (named "spearman"; none in results
/// cached before intervals existed), and each input's correlation (NaN where a map is constant).
type RankPair = { A: string; B: string; Spearman: float; Inputs: int; Intervals: Interval[]; PerInput: PerInput[] }

/// The Monte-Carlo log-Sobolev certificate of one method and target: Ent_mu(f) <= I_mu(f)/2 per input.
type LogSobolev =
    { Method: string
      Target: string
      MeanEntropy: float
      MeanHalfFisher: float
      /// Fraction of inputs whose estimates satisfy Ent <= I/2.
      HoldsFraction: float
      /// Median of Ent / (I/2) over inputs with I > 0.
      MedianRatio: float }

type AttributionTiming = { Method: string; Target: string; Seconds: float; Inputs: int; Cached: bool }

type RunResult =
    { Model: ModelInfo
      Explained: int
      ExplainedIndices: int64[]
      NegativePerturbation: MethodCurves[]
      RankAgreement: RankPair[]
      LogSobolev: LogSobolev[]
      Metrics: MetricResult[]
      Timings: AttributionTiming[] }
