/// What a run produced, as plain serialisable records (arrays, not lists: System.Text.Json reads them back).
module Experiments.Results

type ModelInfo =
    { Source: string
      TestAccuracy: float
      TrainingSeconds: float
      EpochLosses: float[]
      Parameters: int64 }

type Curve = { Name: string; Values: float[]; Auc: float }

type NegativePerturbationResult = { Fractions: float[]; Curves: Curve[] }

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
      Curves: Curve[] }

type RankPair = { A: string; B: string; Spearman: float; Inputs: int }

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
