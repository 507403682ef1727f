/// The methods the benchmark times, with the parameters the performance targets are stated for, and how many
/// forward/backward passes each spends per input (the floor it is compared with).
module Experiments.BenchContenders

open Experiments
open Experiments.BenchSetup

/// One timed method.
type Contender =
    { Id: string
      Spec: MethodSpec
      /// Passes per input of a gradient-sampling method (its floor is that many forward plus input-gradient passes);
      /// None for a method that optimises or walks (timed in seconds an input, without a floor).
      Passes: int option }

let private sampled (id: string) (samples: int) (spec: MethodSpec) = { Id = id; Spec = Dsl.withId id spec; Passes = Some samples }
let private other (id: string) (spec: MethodSpec) = { Id = id; Spec = Dsl.withId id spec; Passes = None }

/// The stage of a layer method moved to `stage` (the CNN's defaults name its own layers).
let private atStage (stage: string) (spec: MethodSpec) =
    match spec.Kind with
    | InformationBottleneck(_, beta, steps) -> { spec with Kind = InformationBottleneck(stage, beta, steps) }
    | InputIba p -> { spec with Kind = InputIba { p with Stage = stage } }
    | GradCam _ -> { spec with Kind = GradCam stage }
    | _ -> spec

/// The covariance sampler of the setup: the paper's shared matrix, or low rank plus diagonal at natural-image sizes.
let covarianceSampler (choice: CovarianceChoice) =
    let c = match Dsl.covarianceGaussian with CovarianceGaussian c -> c | other -> failwith $"unexpected default {other}"
    match choice with
    | SharedCovariance -> CovarianceGaussian { c with Structure = SharedAcrossChannels; Jitter = 1e-5 }
    | LowRankCovariance rank -> CovarianceGaussian { c with Structure = LowRank; Rank = rank; Jitter = 1e-5 }

/// Every contender, `samples` samples (or path steps) each for the gradient-sampling methods; NeFLAG with 20 walks.
let all (samples: int) (covariance: CovarianceChoice) (stage: string) =
    [ sampled "saliency" 1 Dsl.saliency
      sampled "smooth_grad" samples (Dsl.smoothGrad |> Dsl.withSamples samples)
      sampled "var_grad" samples (Dsl.varGrad |> Dsl.withSamples samples)
      sampled "fi_nu" samples (Dsl.functionalInformation |> Dsl.withSamples samples |> Dsl.withSampler (IsotropicGaussian 0.15))
      sampled "fi_sigma" samples (Dsl.functionalInformation |> Dsl.withSamples samples |> Dsl.withSampler (covarianceSampler covariance))
      sampled "integrated_gradients" samples (Dsl.integratedGradients |> Dsl.withSteps samples)
      sampled "expected_gradients" samples
          { Dsl.expectedGradients with Kind = (match Dsl.expectedGradients.Kind with ExpectedGradients(_, r) -> ExpectedGradients(samples, r) | k -> k) }
      sampled "feature_suppression" samples
          { Dsl.featureSuppression with Kind = (match Dsl.featureSuppression.Kind with FeatureSuppression(p, _, t) -> FeatureSuppression(p, samples, t) | k -> k) }
      other "neflag_20" { Dsl.neflag with Kind = (match Dsl.neflag.Kind with NegativeFluxAggregation(_, e, m) -> NegativeFluxAggregation(20, e, m) | k -> k) }
      other "grad_cam" (atStage stage Dsl.gradCam)
      other "information_bottleneck" (atStage stage Dsl.informationBottleneck)
      other "input_iba" (atStage stage Dsl.inputIba)
      other "extremal_perturbation" Dsl.extremalPerturbation ]

/// The gradient-sampling contenders only: the ones with a floor (the quick bench and the default at 28 pixels).
let withFloor (contenders: Contender list) = contenders |> List.filter (fun c -> c.Passes.IsSome)

/// Every contender's id (the same at every size), for checking a command line before anything loads.
let ids = all 2 SharedCovariance "conv2" |> List.map _.Id
