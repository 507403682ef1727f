namespace Experiments

// F# builders for specs. Every default comes from Catalogue.fs (stated once there):
//   Dsl.spec "quickstart"
//   |> Dsl.withSeed 7
//   |> Dsl.withMethods [ Dsl.saliency
//                        Dsl.functionalInformation |> Dsl.withSampler (IsotropicGaussian 0.15) |> Dsl.withId "fi_nu" ]
// Builders never check: run Validate.spec (or Validate.check) on the result, as the YAML path does while reading.

module Dsl =
    open Catalogue

    // --- methods: id = the method's yaml name, parameters = the catalogue's defaults ---

    let private method (v: Variant<MethodKind>) : MethodSpec = { Id = v.Name; Kind = Variant.dflt v }

    let saliency = method MethodEntries.Saliency.variant
    let gradientXInput = method MethodEntries.GradientXInput.variant
    let integratedGradients = method MethodEntries.IntegratedGradients.variant
    let smoothGrad = method MethodEntries.SmoothGrad.variant
    let smoothGradSq = method MethodEntries.SmoothGradSq.variant
    let varGrad = method MethodEntries.VarGrad.variant
    let functionalInformation = method MethodEntries.FunctionalInformation.variant
    let guidedBackprop = method MethodEntries.GuidedBackprop.variant
    let deconvnet = method MethodEntries.Deconvnet.variant
    let sampledGradients = method MethodEntries.SampledGradients.variant
    let neflag = method MethodEntries.NegativeFluxAggregation.variant
    let occlusion = method MethodEntries.Occlusion.variant
    let lime = method MethodEntries.Lime.variant
    let gradCam = method MethodEntries.GradCam.variant
    let featureSuppression = method MethodEntries.FeatureSuppression.variant
    let expectedGradients = method MethodEntries.ExpectedGradients.variant
    let guidedIg = method MethodEntries.GuidedIntegratedGradients.variant
    let agi = method MethodEntries.AdversarialGradientIntegration.variant
    let informationBottleneck = method MethodEntries.InformationBottleneck.variant
    let deepLift = method MethodEntries.DeepLift.variant
    let deepShap = method MethodEntries.DeepShap.variant
    let taylor = method MethodEntries.Taylor.variant
    let inputIba = method MethodEntries.InputIba.variant
    let extremalPerturbation = method MethodEntries.ExtremalPerturbation.variant
    let mipIn = method MethodEntries.MipIn.variant

    let withId (id: string) (m: MethodSpec) = { m with Id = id }

    let private sampling (what: string) (f: SamplingParams -> SamplingParams) (m: MethodSpec) =
        let kind =
            match m.Kind with
            | SmoothGrad p -> SmoothGrad(f p)
            | SmoothGradSq p -> SmoothGradSq(f p)
            | VarGrad p -> VarGrad(f p)
            | FunctionalInformation p -> FunctionalInformation(f p)
            | SampledGradients(p, s, t, b) -> SampledGradients(f p, s, t, b)
            | other -> invalidArg "method" (sprintf "%s applies to sampling methods, not %s" what (methodName other))
        { m with Kind = kind }

    let private composed (what: string) (f: GradientStatistic * bool -> GradientStatistic * bool) (m: MethodSpec) =
        match m.Kind with
        | SampledGradients(p, s, t, b) -> let s', t' = f (s, t) in { m with Kind = SampledGradients(p, s', t', b) }
        | other -> invalidArg "method" (sprintf "%s applies to sampled_gradients, not %s" what (methodName other))

    /// sampled_gradients only: which statistic of the gradients is kept.
    let withStatistic (statistic: GradientStatistic) = composed "withStatistic" (fun (_, t) -> statistic, t)

    /// sampled_gradients only: multiply the statistic by the input.
    let withTimesInput (timesInput: bool) = composed "withTimesInput" (fun (s, _) -> s, timesInput)

    /// sampled_gradients only: multiply the statistic by (input - baseline), the baseline a constant.
    let withTimesInputMinus (baseline: float) (m: MethodSpec) =
        match m.Kind with
        | SampledGradients(p, s, _, _) -> { m with Kind = SampledGradients(p, s, true, baseline) }
        | other -> invalidArg "method" (sprintf "withTimesInputMinus applies to sampled_gradients, not %s" (methodName other))

    /// Sampling methods only (smooth_grad, smooth_grad_sq, var_grad, functional_information).
    let withSamples (n: int) = sampling "withSamples" (fun p -> { p with Samples = n })

    /// Sampling methods only.
    let withSampler (s: SamplerSpec) = sampling "withSampler" (fun p -> { p with Sampler = s })

    /// integrated_gradients only: a fixed number of points.
    let withSteps (steps: int) (m: MethodSpec) =
        match m.Kind with
        | IntegratedGradients(_, rule)
        | IntegratedGradientsAuto(_, _, rule) -> { m with Kind = IntegratedGradients(steps, rule) }
        | other -> invalidArg "method" (sprintf "withSteps applies to integrated_gradients, not %s" (methodName other))

    /// integrated_gradients only: `steps: auto` with this tolerance on the completeness gap, relative to |f(x) - f(0)|
    /// (max_steps: the default, or the one already set).
    let withAutoSteps (tolerance: float) (m: MethodSpec) =
        match m.Kind with
        | IntegratedGradients(_, rule) -> { m with Kind = IntegratedGradientsAuto(tolerance, Attribution.Methods.AdaptiveIntegratedGradients.DefaultMaxSteps, rule) }
        | IntegratedGradientsAuto(_, maxSteps, rule) -> { m with Kind = IntegratedGradientsAuto(tolerance, maxSteps, rule) }
        | other -> invalidArg "method" (sprintf "withAutoSteps applies to integrated_gradients, not %s" (methodName other))

    /// integrated_gradients with steps: auto only: the most points an input gets.
    let withMaxSteps (maxSteps: int) (m: MethodSpec) =
        match m.Kind with
        | IntegratedGradientsAuto(tolerance, _, rule) -> { m with Kind = IntegratedGradientsAuto(tolerance, maxSteps, rule) }
        | other -> invalidArg "method" (sprintf "withMaxSteps applies to integrated_gradients with auto steps (withAutoSteps first), not %s" (methodName other))

    /// integrated_gradients only.
    let withRule (rule: IntegrationRule) (m: MethodSpec) =
        match m.Kind with
        | IntegratedGradients(steps, _) -> { m with Kind = IntegratedGradients(steps, rule) }
        | IntegratedGradientsAuto(tolerance, maxSteps, _) -> { m with Kind = IntegratedGradientsAuto(tolerance, maxSteps, rule) }
        | other -> invalidArg "method" (sprintf "withRule applies to integrated_gradients, not %s" (methodName other))

    /// saliency only.
    let withAbsolute (absolute: bool) (m: MethodSpec) =
        match m.Kind with
        | Saliency _ -> { m with Kind = Saliency absolute }
        | other -> invalidArg "method" (sprintf "withAbsolute applies to saliency, not %s" (methodName other))

    // --- samplers ---

    let isotropicGaussian: SamplerSpec = Variant.dflt Vocabulary.isotropicGaussian
    let covarianceGaussian: SamplerSpec = Variant.dflt Vocabulary.covarianceGaussian

    /// Functional Information's subset sampler (Cor. 4.2) on the box (top, left, height, width), the rest fixed.
    let conditionalGaussian (top: int, left: int, height: int, width: int) : SamplerSpec =
        ConditionalGaussian { Scale = 0.15; Jitter = 1e-5; Box = [ top; left; height; width ]; Rest = RestFixed }

    // --- metrics ---

    let negativePerturbation: MetricSpec = Variant.dflt MetricEntries.NegativePerturbation.variant
    let rankAgreement: MetricSpec = RankAgreement
    let insertionDeletion: MetricSpec = Variant.dflt MetricEntries.InsertionDeletion.variant
    let sensitivityN: MetricSpec = Variant.dflt MetricEntries.SensitivityN.variant
    let parameterRandomisation: MetricSpec = Variant.dflt MetricEntries.ParameterRandomisation.variant
    let explanationCertainty: MetricSpec = Variant.dflt MetricEntries.ExplanationCertainty.variant
    let effectiveHeatRatio: MetricSpec = EffectiveHeatRatio
    let roar: MetricSpec = Variant.dflt MetricEntries.Roar.variant
    let taylorFidelity: MetricSpec = Variant.dflt MetricEntries.TaylorFidelity.variant
    let twoWord: MetricSpec = Variant.dflt MetricEntries.TwoWord.variant

    /// negative_perturbation only.
    let withFractions (fractions: float list) (m: MetricSpec) =
        match m with
        | NegativePerturbation s -> NegativePerturbation { s with Fractions = fractions }
        | _ -> invalidArg "metric" "withFractions applies to negative_perturbation"

    /// negative_perturbation only.
    let withMaskValue (value: float) (m: MetricSpec) =
        match m with
        | NegativePerturbation s -> NegativePerturbation { s with MaskValue = value }
        | _ -> invalidArg "metric" "withMaskValue applies to negative_perturbation"

    // --- the spec ---

    /// A spec with every default, Fashion-MNIST and its CNN, and no method yet (withDataset and withArchitecture change them).
    let spec (name: string) : Spec =
        { Name = name
          Seed = Param.dflt Top.seed
          Device = Param.dflt Top.device
          Output = Param.dflt Top.output
          Data =
            { Dataset = FashionMnist
              Root = Param.dflt Data.root
              TrainLimit = Param.dflt Data.trainLimit
              Explain = Param.dflt Data.explain
              UtterancesPerWord = Param.dflt Data.utterances }
          Model =
            { Architecture = FashionCnn
              Epochs = Param.dflt Model.epochs
              BatchSize = Param.dflt Model.batchSize
              LearningRate = Param.dflt Model.learningRate
              Weights = Param.dflt Model.weights
              Normalise = None }
          Explain = Param.dflt Top.explain
          Methods = []
          Metrics = Param.dflt Top.metrics
          Report = Param.dflt Top.report
          Full = Param.dflt Top.full }

    let withSeed seed (s: Spec) = { s with Seed = seed }
    let withDevice device (s: Spec) = { s with Device = device }
    let withOutput output (s: Spec) = { s with Output = output }
    let withMethods methods (s: Spec) = { s with Methods = methods }
    let withMetrics metrics (s: Spec) = { s with Metrics = metrics }

    let withDataset dataset (s: Spec) = { s with Data.Dataset = dataset }
    let withRoot root (s: Spec) = { s with Data.Root = Some root }
    let withTrainLimit n (s: Spec) = { s with Data.TrainLimit = Some n }
    let withExplainCount n (s: Spec) = { s with Data.Explain = n }

    let withArchitecture a (s: Spec) = { s with Model.Architecture = a }
    let withEpochs n (s: Spec) = { s with Model.Epochs = n }
    let withTrainBatchSize n (s: Spec) = { s with Model.BatchSize = n }
    let withLearningRate lr (s: Spec) = { s with Model.LearningRate = lr }
    let withWeights path (s: Spec) = { s with Model.Weights = Some path }

    let withTargets targets (s: Spec) = { s with Explain.Targets = targets }
    let withOutputFunction f (s: Spec) = { s with Explain.Output = f }
    let withExplainBatchSize n (s: Spec) = { s with Explain.BatchSize = n }
    /// Common random numbers: every method draws an input's noise from the same seed (explain.common_noise).
    let withCommonNoise (on: bool) (s: Spec) = { s with Explain.CommonNoise = on }
    let withPrecision (precision: Precision) (s: Spec) = { s with Explain.Precision = precision }

    let withHeatmapInputs n (s: Spec) = { s with Report.HeatmapInputs = n }
