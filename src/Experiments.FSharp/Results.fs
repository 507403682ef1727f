/// What a run produced, as plain serialisable records (arrays, not lists: System.Text.Json reads them back).
module Experiments.Results

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

type NegativePerturbationResult = { Fractions: float[]; Curves: Curve[]; Intervals: Interval[] }

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
      Intervals: Interval[] }

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

/// Two methods' mean Spearman correlation over inputs, with its bootstrap interval (named "spearman"; none in results
/// cached before intervals existed).
type RankPair = { A: string; B: string; Spearman: float; Inputs: int; Intervals: Interval[] }

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
