namespace Experiments

// One declaration per parameter: its yaml name, type, default, allowed range and doc. The YAML decoder
// (Yaml.fs), the F# builders (Dsl.fs), validation of F# values (Validate.fs), the YAML printer and `list`
// all read these declarations, so each default and each range is stated once, here.

open System
open System.Text.RegularExpressions

module Catalogue =

    /// The longest spec name or method id: they name files and folders, which every file system takes at this length.
    [<Literal>]
    let MaxNameLength = 64

    /// Names Windows reserves for devices, whatever the extension.
    let private reservedNames =
        set ([ "con"; "prn"; "aux"; "nul" ] @ [ for i in 1..9 do yield $"com{i}"; yield $"lpt{i}" ])

    /// Why a spec name or method id is not safe as a file name on Linux, macOS and Windows; None when it is.
    let identProblem (s: string) =
        if s.Length = 0 then Some "must not be empty"
        elif s.Length > MaxNameLength then Some $"must be at most {MaxNameLength} characters (it names files and folders)"
        // \A and \z: `$` would also match before a final newline.
        elif not (Regex.IsMatch(s, @"\A[a-z0-9][a-z0-9_-]*\z")) then
            Some "must be lower-case letters, digits, '_' and '-', starting with a letter or digit (it names files and folders)"
        elif reservedNames.Contains s then Some "is a device name on Windows and cannot name a file there"
        else None

    let isIdent (s: string) = (identProblem s).IsNone

    let private identCheck (s: string) = identProblem s

    /// A path: not empty, one line, no control characters (a NUL ends the path for the operating system).
    let pathProblem (s: string) =
        if String.IsNullOrWhiteSpace s then Some "must not be empty"
        elif s |> Seq.exists Char.IsControl then Some "must not hold control characters (a NUL, a newline, a tab)"
        else None

    let private nonEmpty (s: string) = pathProblem s

    /// Issues for the later items of a list that repeat an earlier key.
    let private duplicates (what: string) (key: 'a -> 'b) (sub: string) (xs: 'a list) : Issue list =
        let first = Collections.Generic.Dictionary<'b, int>(HashIdentity.Structural)
        xs
        |> List.mapi (fun i x -> i, x)
        |> List.choose (fun (i, x) ->
            match first.TryGetValue(key x) with
            | true, j ->
                Some
                    { Path = FieldPath.join (sprintf "[%d]" i) sub
                      Message = sprintf "duplicate %s (first at [%d])" what j
                      Found = Some(string (key x)) }
            | _ ->
                first.[key x] <- i
                None)

    /// The yaml names of the closed enumerations.
    module Names =
        let devices = [ "auto", Auto; "cpu", Cpu; "cuda", Cuda ]
        let targets = [ "ground_truth", GroundTruth; "predicted", Predicted ]
        let outputs = [ "probability", Probability; "logit", Logit ]
        let datasets = [ "fashion_mnist", FashionMnist; "fashion_canvas", FashionCanvas; "spam_assassin", SpamAssassin; "speech_commands", SpeechCommands ]
        let architectures = [ "fashion_cnn", FashionCnn; "small_resnet", SmallResNet; "text_lstm", TextLstm; "text_bilstm", TextBiLstm; "text_cnn", TextCnn; "text_transformer", TextTransformer; "m5", M5 ]
        let covariances = [ "class", ClassCovariance ]
        let layouts = [ "shared_across_channels", SharedAcrossChannels; "per_channel", PerChannel; "full", FullMatrix; "low_rank", LowRank ]
        /// Stages with a spatial map (Grad-CAM needs one): fashion_cnn's conv1..pool2, small_resnet's stem..stage3
        /// (validation checks the stage belongs to the spec's architecture).
        let spatialStages =
            [ for s in [ "conv1"; "pool1"; "conv2"; "pool2"; "stem"; "stage1"; "stage2"; "stage3"; "lstm"; "conv"; "norm" ] -> s, s ]
        let taylorTerms = [ "first", FirstOrder; "independent", IndependentTerms; "interactive", InteractiveTerms; "all", AllTerms ]
        let rests = [ "fixed", RestFixed; "marginal", RestFromMarginal ]
        let statistics = [ "mean", Mean; "mean_square", MeanSquare; "variance", Variance; "mean_absolute", MeanAbsolute; "fisher_ratio", FisherRatio ]

        /// Captum's names for the integration rules.
        let rules =
            [ "gausslegendre", GaussLegendre
              "riemann_left", RiemannLeft
              "riemann_right", RiemannRight
              "riemann_middle", RiemannMiddle
              "riemann_trapezoid", RiemannTrapezoid ]

    /// Upper bounds of the parameters, each far above any published setting and low enough that a run fits in
    /// memory and finishes; `list` prints them with each parameter.
    module Bounds =
        /// Samples, steps, walks and iterations of one method on one input.
        [<Literal>]
        let Draws = 10_000
        /// Reference inputs (baselines, training subsets) a method holds at once.
        [<Literal>]
        let References = 10_000
        /// Magnitudes in input units (noise, constants written into inputs, blur widths).
        [<Literal>]
        let Magnitude = 1000.0
        /// Sizes in pixels, before the composition rules bound them by the image itself.
        [<Literal>]
        let Pixels = 1_000_000
        /// Training epochs.
        [<Literal>]
        let Epochs = 1000
        /// Inputs per forward/backward chunk.
        [<Literal>]
        let BatchSize = 65_536
        /// Points of a list of fractions.
        [<Literal>]
        let Fractions = 1000

    /// Parameters of methods, samplers and metrics.
    module Params =
        let absolute = Param.bool "abs" "take the absolute value of the gradient (Captum's abs)" (Some true)
        let steps = Param.int "steps" "number of integration points (Captum's n_steps)" (Some 50) 1 (Some Bounds.Draws)
        let rule = Param.choice "rule" "integration rule" "quadrature of the path integral (Captum's method)" (Some GaussLegendre) Names.rules
        let stdev = Param.float "stdev" "standard deviation of the noise, in normalised input units" (Some 0.15) true Bounds.Magnitude
        let scale = Param.float "scale" "z ~ N(x, scale * Sigma)" (Some 0.15) true Bounds.Magnitude
        let covariance = Param.choice "covariance" "covariance source" "where Sigma comes from: class = class-conditional covariance of the training inputs" (Some ClassCovariance) Names.covariances
        let jitter = Param.float "jitter" "added to the diagonal of Sigma, relative to its mean diagonal" (Some 1e-5) false 1.0

        let statistic =
            Param.choice "statistic" "statistic" "what is kept of the sampled gradients g: mean E[g], mean_square E[g^2], variance, mean_absolute E|g|, fisher_ratio E[(C g) g / f]" (Some Mean) Names.statistics
        let timesInput = Param.bool "times_input" "multiply the statistic by the input minus the baseline (as Gradient x Input does)" (Some false)
        let multiplierBaseline =
            Param.floatIn "baseline" "the constant b of times_input: the statistic is multiplied by x - b (0: by x; needs times_input)" (Some 0.0) -Bounds.Magnitude Bounds.Magnitude

        let walks = Param.int "samples" "number of walks on the epsilon-sphere (n; 1, 10 and 20 in the paper's tables)" (Some 20) 1 (Some Bounds.Draws)
        let epsilon = Param.float "epsilon" "L2 radius of the sphere, in input units (the paper: 0.05 to 0.2)" (Some 0.1) true 10.0
        let maxSteps = Param.int "max_steps" "longest walk (m)" (Some 20) 1 (Some Bounds.Draws)
        let window = Param.int "window" "side of the square occlusion window, in pixels (at most the image's side)" (Some 4) 1 (Some Bounds.Pixels)
        let stride = Param.int "stride" "step of the window, in pixels (at most the image's side)" (Some 2) 1 (Some Bounds.Pixels)
        let limeSamples = Param.int "samples" "perturbed copies fitted (Captum's n_samples is 50; 49 superpixels need more)" (Some 200) 2 (Some Bounds.Draws)
        let cell = Param.int "cell" "side of the square superpixels, in pixels (at most the image's side)" (Some 4) 1 (Some Bounds.Pixels)
        let kernelWidth = Param.float "kernel_width" "width of the exponential kernel on the cosine distance" (Some 1.0) true Bounds.Magnitude
        let stage = Param.choice "stage" "stage" "the layer whose activation is weighted" (Some "conv2") Names.spatialStages

        let dropProbability =
            Param.make "p" "float" "[0, 1)" "probability that a pixel is dropped to 0 (Sampling Matters: 0.6 to 0.8 work best)" (Some 0.7) Decode.float Out.float (fun v ->
                if v >= 0.0 && v < 1.0 then None else Some "must be in [0, 1)")
        let references = Param.int "references" "training images the baselines are drawn from (a seeded random subset)" (Some 100) 1 (Some Bounds.References)

        /// Number of draws (Captum's nt_samples); VarGrad needs two for a variance.
        let samples (minimum: int) = Param.int "samples" "number of draws (Captum's nt_samples)" (Some 50) minimum (Some Bounds.Draws)

        /// A float strictly between 0 and 1.
        let openFraction name doc dflt =
            Param.make name "float" "(0, 1)" doc dflt Decode.float Out.float (fun v ->
                if v > 0.0 && v < 1.0 then None else Some "must be in (0, 1)")

        let unitFraction =
            Param.make "fraction" "float" "(0, 1)" "fraction of pixels masked" None Decode.float Out.float (fun v ->
                if v > 0.0 && v < 1.0 then None else Some "must be in (0, 1)")

        /// Strictly increasing fractions, at least `minimum` of them (an area under a curve needs two points).
        let increasingAtLeast (minimum: int) (xs: float list) =
            let empty =
                if xs.Length < minimum then
                    let message = if minimum = 1 then "at least one fraction is required" else $"at least {minimum} fractions are required (the curve's area needs them)"
                    [ { Path = ""; Message = message; Found = (if xs.IsEmpty then None else Some(Out.flow (Out.Seq(xs |> List.map Out.float)))) } ]
                elif xs.Length > Bounds.Fractions then
                    [ { Path = ""; Message = $"at most {Bounds.Fractions} fractions"; Found = Some(string xs.Length + " fractions") } ]
                else []
            let order =
                xs
                |> List.pairwise
                |> List.mapi (fun i (a, b) ->
                    if b > a then None
                    else Some { Path = sprintf "[%d]" (i + 1); Message = sprintf "must be greater than the previous fraction %s" (Out.flow (Out.float a)); Found = Some(Out.flow (Out.float b)) })
                |> List.choose id
            empty @ order

        let increasing = increasingAtLeast 1

        let fractions =
            Param.list "fractions" "fractions of the least relevant pixels to mask" (Some [ for i in 1..9 -> float i / 10.0 ]) unitFraction "at least two, strictly increasing, in (0, 1)" (increasingAtLeast 2)

        let maskValue =
            Param.floatIn "mask_value" "value written into masked pixels (pixels are in [0, 1]: 0 = black)" (Some 0.0) -Bounds.Magnitude Bounds.Magnitude

    // --- samplers --------------------------------------------------------------------------------

    let isotropicGaussian: Variant<SamplerSpec> =
        Variant.make "isotropic_gaussian" "z ~ N(x, stdev^2 I) (Smilkov et al. 2017, SmoothGrad)" (Fields.field id Params.stdev) IsotropicGaussian (function
            | IsotropicGaussian s -> Some s
            | _ -> None)

    let covarianceGaussian: Variant<SamplerSpec> =
        Variant.make
            "covariance_gaussian"
            "z ~ N(x, scale * Sigma), Sigma + jitter * mean(diag Sigma) I (Gat et al. 2022, Sec. 4)"
            (fields {
                let! scale = Fields.field (fun (c: CovarianceGaussianSpec) -> c.Scale) Params.scale
                and! covariance = Fields.field (fun (c: CovarianceGaussianSpec) -> c.Covariance) Params.covariance
                and! jitter = Fields.field (fun (c: CovarianceGaussianSpec) -> c.Jitter) Params.jitter
                and! structure =
                    Fields.field (fun (c: CovarianceGaussianSpec) -> c.Structure)
                        (Param.choice "structure" "covariance structure" "how Sigma is held: one matrix shared across channels (the paper's), one per channel, the full matrix, or low rank plus diagonal (images only, except the shared one)" (Some SharedAcrossChannels) Names.layouts)
                and! rank = Fields.field (fun (c: CovarianceGaussianSpec) -> c.Rank) (Param.int "rank" "principal directions kept by structure low_rank (at most the input's dimension)" (Some 64) 1 (Some Bounds.Pixels))
                return { Scale = scale; Covariance = covariance; Jitter = jitter; Structure = structure; Rank = rank }
            })
            CovarianceGaussian
            (function
            | CovarianceGaussian c -> Some c
            | _ -> None)

    let bernoulliSuppression: Variant<SamplerSpec> =
        Variant.make "bernoulli_suppression" "each pixel kept with probability 1 - p, else set to 0 (Luo et al., Sampling Matters, Eq. 11)" (Fields.field id Params.dropProbability) BernoulliSuppression (function
            | BernoulliSuppression p -> Some p
            | _ -> None)

    let epsilonSphere: Variant<SamplerSpec> =
        Variant.make "epsilon_sphere" "uniform on the L2 sphere of radius epsilon around x (Li et al. 2023)" (Fields.field id Params.epsilon) EpsilonSphere (function
            | EpsilonSphere e -> Some e
            | _ -> None)

    /// A box [top, left, height, width] of pixels: four integers, top and left at least 0, height and width at least 1.
    let private box =
        let coordinate = Param.int "box" "a box coordinate in pixels" None 0 (Some Bounds.Pixels)
        let check (xs: int list) =
            let issue message = [ { Path = ""; Message = message; Found = Some(xs |> List.map string |> String.concat ", " |> sprintf "[%s]") } ]
            if xs.Length <> 4 then issue "must be four integers [top, left, height, width]"
            elif xs.[2] < 1 || xs.[3] < 1 then issue "height and width must be at least 1"
            else []
        Param.list "box" "the explained pixels (every channel): [top, left, height, width]; they must lie inside the image" None coordinate "[top, left, height, width], in pixels" check

    let conditionalGaussian: Variant<SamplerSpec> =
        Variant.make
            "conditional_gaussian"
            "Gat et al. 2022, Cor. 4.2: only the pixels of a box move, z1 ~ N(x1 + S12 S22^-1 (z2 - x2), scale (S11 - S12 S22^-1 S21)), Sigma the class covariance; the rest fixed (z2 = x2) or drawn from N(x2, scale S22) (images only)"
            (fields {
                let! scale = Fields.field (fun (c: ConditionalGaussianSpec) -> c.Scale) Params.scale
                and! jitter = Fields.field (fun (c: ConditionalGaussianSpec) -> c.Jitter) Params.jitter
                and! box = Fields.field (fun (c: ConditionalGaussianSpec) -> c.Box) box
                and! rest =
                    Fields.field (fun (c: ConditionalGaussianSpec) -> c.Rest)
                        (Param.choice "rest" "rest" "what the pixels outside the box do: fixed (z2 = x2, Eq. 17) or drawn from their marginal (Eq. 16)" (Some RestFixed) Names.rests)
                return ({ Scale = scale; Jitter = jitter; Box = box; Rest = rest }: ConditionalGaussianSpec)
            })
            ConditionalGaussian
            (function
            | ConditionalGaussian c -> Some c
            | _ -> None)

    let samplers = [ isotropicGaussian; covarianceGaussian; conditionalGaussian; bernoulliSuppression; epsilonSphere ]
    let samplerNames = samplers |> List.map _.Name

    let sampler (dflt: SamplerSpec) =
        Variant.param "sampler" "the distribution of the draws around x" "kind" "sampler" (Some dflt) samplers

    // --- methods ---------------------------------------------------------------------------------

    let private sampling (minSamples: int) (dflt: SamplerSpec) : Fields<SamplingParams, SamplingParams> =
        fields {
            let! samples = Fields.field (fun (p: SamplingParams) -> p.Samples) (Params.samples minSamples)
            and! sampler = Fields.field (fun (p: SamplingParams) -> p.Sampler) (sampler dflt)
            return { Samples = samples; Sampler = sampler }
        }

    let private isotropic = IsotropicGaussian(Param.dflt Params.stdev)

    let saliency =
        Variant.make "saliency" "Simonyan et al. 2014: |grad f(x)| (abs: false keeps the sign)" (Fields.field id Params.absolute) Saliency (function
            | Saliency a -> Some a
            | _ -> None)

    let gradientXInput =
        Variant.constant "gradient_x_input" "Shrikumar et al. 2016: x * grad f(x)" GradientXInput

    let integratedGradients =
        Variant.make
            "integrated_gradients"
            "Sundararajan et al. 2017, Eq. 1: (x - x') * int_0^1 grad f(x' + a(x - x')) da, baseline x' = 0"
            (fields {
                let! steps = Fields.field fst Params.steps
                and! rule = Fields.field snd Params.rule
                return steps, rule
            })
            IntegratedGradients
            (function
            | IntegratedGradients(s, r) -> Some(s, r)
            | _ -> None)

    let smoothGrad =
        Variant.make "smooth_grad" "Smilkov et al. 2017: E_z[grad f(z)]" (sampling 1 isotropic) SmoothGrad (function
            | SmoothGrad p -> Some p
            | _ -> None)

    let smoothGradSq =
        Variant.make "smooth_grad_sq" "Hooker et al. 2019 (SmoothGrad-Squared): E_z[(grad f(z))^2]" (sampling 1 isotropic) SmoothGradSq (function
            | SmoothGradSq p -> Some p
            | _ -> None)

    let varGrad =
        Variant.make "var_grad" "Adebayo et al. 2018: Var_z[grad f(z)]" (sampling 2 isotropic) VarGrad (function
            | VarGrad p -> Some p
            | _ -> None)

    let functionalInformation =
        Variant.make
            "functional_information"
            "Gat et al. 2022, Eq. 13: E_z~N(x, C)[(C grad f)_i grad f_i / f], C = scale * Sigma_class (or stdev^2 I)"
            (sampling 1 (Variant.dflt covarianceGaussian))
            FunctionalInformation
            (function
            | FunctionalInformation p -> Some p
            | _ -> None)

    let guidedBackprop =
        Variant.constant "guided_backprop" "Springenberg et al. 2015: grad f(x) with each ReLU passing only positive gradients where its input was positive" GuidedBackprop

    let random =
        Variant.constant "random" "the chance baseline: U(0, 1) independently for every input element (ROAR's and the InputIBA paper's random attribution)" RandomMap

    let deconvnet =
        Variant.constant "deconvnet" "Zeiler and Fergus 2014: grad f(x) with each ReLU passing the positive part of the gradient" Deconvnet

    let neflag =
        Variant.make
            "neflag"
            "Li et al. 2023, Algorithm 1: negative flux aggregation, sum over walks of F(x~) (.) (x - x~) on the epsilon-sphere"
            (fields {
                let! samples = Fields.field (fun (n, _, _) -> n) Params.walks
                and! epsilon = Fields.field (fun (_, e, _) -> e) Params.epsilon
                and! maxSteps = Fields.field (fun (_, _, m) -> m) Params.maxSteps
                return samples, epsilon, maxSteps
            })
            NegativeFluxAggregation
            (function
            | NegativeFluxAggregation(n, e, m) -> Some(n, e, m)
            | _ -> None)

    let occlusion =
        Variant.make
            "occlusion"
            "Zeiler and Fergus 2014 (Captum's Occlusion): f(x) - f(x with a window set to 0), averaged over the windows covering a pixel"
            (fields {
                let! window = Fields.field fst Params.window
                and! stride = Fields.field snd Params.stride
                return window, stride
            })
            Occlusion
            (function
            | Occlusion(w, s) -> Some(w, s)
            | _ -> None)

    let lime =
        Variant.make
            "lime"
            "Ribeiro et al. 2016 (Captum's Lime): weighted linear fit of f on random superpixel masks; on text the features are the words (each kept or replaced by <unk>; cell unused; use more samples than words, e.g. 1000)"
            (fields {
                let! samples = Fields.field (fun (n, _, _) -> n) Params.limeSamples
                and! cell = Fields.field (fun (_, c, _) -> c) Params.cell
                and! kernelWidth = Fields.field (fun (_, _, k) -> k) Params.kernelWidth
                return samples, cell, kernelWidth
            })
            Lime
            (function
            | Lime(n, c, k) -> Some(n, c, k)
            | _ -> None)

    let featureSuppression =
        Variant.make
            "feature_suppression"
            "Luo et al., Sampling Matters, Eq. 11: E|grad f(x*)| with x* = x with pixels dropped with probability p (times x optionally)"
            (fields {
                let! p = Fields.field (fun (p, _, _) -> p) Params.dropProbability
                and! samples = Fields.field (fun (_, n, _) -> n) (Params.samples 1)
                and! timesInput = Fields.field (fun (_, _, t) -> t) Params.timesInput
                return p, samples, timesInput
            })
            FeatureSuppression
            (function
            | FeatureSuppression(p, n, t) -> Some(p, n, t)
            | _ -> None)

    let expectedGradients =
        Variant.make
            "expected_gradients"
            "Erion et al. 2021: E_b,a[(x - b) (.) grad f(b + a (x - b))], b a training image, a ~ U(0, 1) (Captum's GradientShap)"
            (fields {
                let! samples = Fields.field fst (Params.samples 1)
                and! references = Fields.field snd Params.references
                return samples, references
            })
            ExpectedGradients
            (function
            | ExpectedGradients(n, r) -> Some(n, r)
            | _ -> None)

    let guidedIg =
        Variant.make
            "guided_ig"
            "Kapishnikov et al. 2021: a path from 0 to x that moves the features with the smallest |grad f| first (PAIR-code library defaults)"
            (fields {
                let! steps = Fields.field (fun (s, _, _) -> s) (Param.int "steps" "path steps" (Some 200) 1 (Some Bounds.Draws))
                and! fraction = Fields.field (fun (_, f, _) -> f) (Param.float "fraction" "fraction of features moved per inner step" (Some 0.25) true 1.0)
                and! maxDist = Fields.field (fun (_, _, d) -> d) (Param.float "max_dist" "allowed deviation from the straight path, relative" (Some 0.02) false 1.0)
                return steps, fraction, maxDist
            })
            GuidedIntegratedGradients
            (function
            | GuidedIntegratedGradients(s, f, d) -> Some(s, f, d)
            | _ -> None)

    let agi =
        Variant.make
            "agi"
            "Pan et al. 2021: sum over false classes of -grad f (.) delta along an adversarial walk towards each"
            (fields {
                let! k = Fields.field (fun (k, _, _) -> k) (Param.int "false_classes" "false classes walked towards (all when >= classes - 1)" (Some 20) 1 (Some 1000))
                and! epsilon = Fields.field (fun (_, e, _) -> e) (Param.float "epsilon" "step size of the attack, in input units" (Some 0.05) true 1.0)
                and! iterations = Fields.field (fun (_, _, m) -> m) (Param.int "max_iterations" "longest walk" (Some 20) 1 (Some Bounds.Draws))
                return k, epsilon, iterations
            })
            AdversarialGradientIntegration
            (function
            | AdversarialGradientIntegration(k, e, m) -> Some(k, e, m)
            | _ -> None)

    let informationBottleneck =
        Variant.make
            "information_bottleneck"
            "Schulz et al. 2020 (IBA): per-sample bottleneck Z = l R + (1 - l) eps at a stage; heatmap = KL capacity in bits"
            (fields {
                let! stage = Fields.field (fun (s, _, _) -> s) (Param.choice "stage" "stage" "the layer carrying the bottleneck (text: lstm for text_lstm and text_bilstm, conv for text_cnn, norm for text_transformer; a word's score is its position's bits)" (Some "conv2") Names.spatialStages)
                and! beta = Fields.field (fun (_, b, _) -> b) (Param.float "beta" "weight of the capacity in the loss" (Some 10.0) true 1e6)
                and! steps = Fields.field (fun (_, _, n) -> n) (Param.int "steps" "Adam steps (learning rate 1) on 10 noisy copies" (Some 10) 1 (Some Bounds.Draws))
                return stage, beta, steps
            })
            InformationBottleneck
            (function
            | InformationBottleneck(s, b, n) -> Some(s, b, n)
            | _ -> None)

    let inputIba =
        Variant.make
            "input_iba"
            "Zhang et al. 2021: IBA at a stage (beta_feat), a WGAN fits the input mask so the stage's features under the input noise match the bottleneck's (RMSProp 5e-5, clip 0.01, 5 critic steps per generator step), then the input bottleneck with the Prop. 3 KL (beta_input, Adam lr 1); heatmap = input capacity in bits (or the mask)"
            (fields {
                let! stage = Fields.field (fun (s: InputIbaSpec) -> s.Stage) (Param.choice "stage" "stage" "the layer carrying the feature bottleneck (text: lstm for text_lstm and text_bilstm, conv for text_cnn, norm for text_transformer; the reference code's text settings are beta_feat 0.5, beta_input 0.01, steps 20)" (Some "conv2") Names.spatialStages)
                and! betaFeature = Fields.field (fun (s: InputIbaSpec) -> s.BetaFeature) (Param.float "beta_feat" "capacity weight of the feature bottleneck (stage 1)" (Some 10.0) true 1e6)
                and! betaInput = Fields.field (fun (s: InputIbaSpec) -> s.BetaInput) (Param.float "beta_input" "capacity weight of the input bottleneck (stage 3)" (Some 20.0) true 1e6)
                and! epochs = Fields.field (fun (s: InputIbaSpec) -> s.Epochs) (Param.int "epochs" "WGAN epochs (stage 2; 0 skips it: lambda_G stays at its initialisation, the feature capacity upsampled to the input)" (Some 20) 0 (Some Bounds.Epochs))
                and! steps = Fields.field (fun (s: InputIbaSpec) -> s.Steps) (Param.int "steps" "Adam steps of the input bottleneck (stage 3)" (Some 60) 1 (Some Bounds.Draws))
                and! showMask = Fields.field (fun (s: InputIbaSpec) -> s.ShowMask) (Param.bool "show_mask" "the map is the input mask Lambda* (the paper's figures) instead of the capacity in bits" (Some false))
                return { Stage = stage; BetaFeature = betaFeature; BetaInput = betaInput; Epochs = epochs; Steps = steps; ShowMask = showMask }
            })
            InputIba
            (function
            | InputIba s -> Some s
            | _ -> None)

    let extremalPerturbation =
        Variant.make
            "extremal_perturbation"
            "Fong et al. 2019 (TorchRay's extremal_perturbation, preserve, blurred substrate): a smooth mask of the given area maximising the target's logit; SGD lr 0.01 momentum 0.9, area weight 300 growing 1.0035 a step; mask step, smoothing and blur scaled from 224 px to the image"
            (fields {
                let! area = Fields.field fst (Params.openFraction "area" "fraction of the image the mask keeps (TorchRay's default 0.1)" (Some 0.1))
                and! iterations = Fields.field snd (Param.int "iterations" "optimisation steps (TorchRay: 800)" (Some 800) 1 (Some Bounds.Draws))
                return area, iterations
            })
            ExtremalPerturbation
            (function
            | ExtremalPerturbation(a, n) -> Some(a, n)
            | _ -> None)

    let mipIn =
        Variant.make
            "mip_in"
            "MIP-IN (mutual-information-preserving inverse network; designed from the abstract of arXiv 2104.06629, see docs/methods.md): each stage inverted by the transpose of its gated local map times a learned mixing, trained top-down on reference inputs, projected per input to keep the target logit; explains the logit (fashion_cnn only)"
            (fields {
                let! steps = Fields.field fst (Param.int "steps" "Adam steps per stage when training the inverse" (Some 200) 1 (Some Bounds.Draws))
                and! references = Fields.field snd (Param.int "references" "training images the inverse is trained on (a seeded random subset)" (Some 256) 2 (Some Bounds.References))
                return steps, references
            })
            MipIn
            (function
            | MipIn(s, r) -> Some(s, r)
            | _ -> None)

    let deepLift =
        Variant.constant "deep_lift" "Shrikumar et al. 2017 (Rescale; Captum's DeepLift): (x - b) times rescaled multipliers, b = 0; always explains the logit" DeepLift

    let deepShap =
        Variant.make
            "deep_shap"
            "Lundberg and Lee 2017 (Captum's DeepLiftShap): DeepLIFT averaged over baselines drawn from the training images; always explains the logit"
            (Fields.field id (Param.int "references" "training images used as baselines (a seeded random subset)" (Some 20) 1 (Some Bounds.References)))
            DeepShap
            (function
            | DeepShap n -> Some n
            | _ -> None)

    let gradCam =
        Variant.make "grad_cam" "Selvaraju et al. 2017: ReLU(sum_k mean(d f / d A_k) A_k) at a stage, upsampled to the input" (Fields.field id Params.stage) GradCam (function
            | GradCam s -> Some s
            | _ -> None)

    let sampledGradients =
        Variant.make
            "sampled_gradients"
            "sampler x statistic: any sampler with any statistic of grad f(z), optionally times (x - baseline) (SmoothGrad, SmoothGradSQ, VarGrad and FI are presets)"
            (fields {
                let! samples = Fields.field (fun ((p: SamplingParams), _, _, _) -> p.Samples) (Params.samples 2)
                and! sampler = Fields.field (fun ((p: SamplingParams), _, _, _) -> p.Sampler) (sampler isotropic)
                and! statistic = Fields.field (fun (_, s, _, _) -> s) Params.statistic
                and! timesInput = Fields.field (fun (_, _, t, _) -> t) Params.timesInput
                and! baseline = Fields.field (fun (_, _, _, b) -> b) Params.multiplierBaseline
                return { Samples = samples; Sampler = sampler }, statistic, timesInput, baseline
            })
            (fun (p, s, t, b) -> SampledGradients(p, s, t, b))
            (function
            | SampledGradients(p, s, t, b) -> Some(p, s, t, b)
            | _ -> None)

    let taylor =
        Variant.make
            "taylor"
            "Deng et al. 2020 (unified Taylor framework): exact Taylor terms of f(x) - f(b) around a constant baseline b via Hessian-vector products; the map adds the chosen terms, each pairwise interaction split half and half (d double-backward rows per input: slow on large inputs)"
            (fields {
                let! order = Fields.field (fun (o, _, _) -> o) (Param.int "order" "highest order of the expansion (1 to 3)" (Some 2) 1 (Some 3))
                and! terms = Fields.field (fun (_, t, _) -> t) (Param.choice "terms" "terms" "which terms the map adds up" (Some AllTerms) Names.taylorTerms)
                and! baseline = Fields.field (fun (_, _, b) -> b) (Param.floatIn "baseline" "the constant baseline input b (0 = black)" (Some 0.0) -Bounds.Magnitude Bounds.Magnitude)
                return order, terms, baseline
            })
            Taylor
            (function
            | Taylor(o, t, b) -> Some(o, t, b)
            | _ -> None)

    let methods =
        [ saliency
          gradientXInput
          integratedGradients
          smoothGrad
          smoothGradSq
          varGrad
          functionalInformation
          guidedBackprop
          deconvnet
          neflag
          occlusion
          lime
          gradCam
          featureSuppression
          expectedGradients
          guidedIg
          agi
          informationBottleneck
          inputIba
          extremalPerturbation
          mipIn
          deepLift
          deepShap
          taylor
          sampledGradients
          random ]

    let methodNames = methods |> List.map _.Name

    /// The yaml name of a method kind.
    let methodName (k: MethodKind) =
        methods |> List.find (fun v -> (v.Encode k).IsSome) |> _.Name

    /// One entry of `methods`: `method` names the kind, `id` (default: the method's name) names the run.
    let methodSpec: Param<MethodSpec> =
        let idCheck (m: MethodSpec) =
            match identCheck m.Id with
            | Some msg -> [ { Path = "id"; Message = msg; Found = Some m.Id } ]
            | None -> []
        { Info = { Name = "method"; Type = "method"; Default = None; Allowed = String.Join(" | ", methodNames); Doc = "an attribution method" }
          Default = None
          Decode =
            fun ctx n ->
                let id =
                    match n with
                    | Node.Map(entries, _) ->
                        entries
                        |> List.tryFind (fun (k, _, _) -> k = "id")
                        |> Option.map (fun (_, _, node) -> Decode.string (Decode.field "id" ctx) node |> Decoded.map Some)
                    | _ -> None
                    |> Option.defaultValue (Decoded.ok None)
                Decoded.map2
                    (fun (name, kind) id -> { Id = Option.defaultValue name id; Kind = kind })
                    (Variant.decoder "method" "method" [ "id" ] methods ctx n)
                    id
          Encode = fun m -> Out.Map(("id", Out.Str m.Id) :: Variant.encode "method" methods m.Kind)
          Check = idCheck
          Deep = fun m -> Variant.issues methods m.Kind }

    // --- metrics ---------------------------------------------------------------------------------

    let negativePerturbation =
        Variant.make
            "negative_perturbation"
            "Gat et al. 2022, Sec. 5.2: mask the least important fractions; post-hoc accuracy and consistency AUC"
            (fields {
                let! fractions = Fields.field (fun (s: NegativePerturbationSpec) -> s.Fractions) Params.fractions
                and! mask = Fields.field (fun (s: NegativePerturbationSpec) -> s.MaskValue) Params.maskValue
                return { Fractions = fractions; MaskValue = mask }
            })
            NegativePerturbation
            (function
            | NegativePerturbation s -> Some s
            | _ -> None)

    let rankAgreement =
        Variant.constant "rank_agreement" "Spearman rank correlation between the maps of every pair of methods" RankAgreement

    let insertionDeletion =
        Variant.make
            "insertion_deletion"
            "Petsiuk et al. 2018 / Li et al. 2023: deletion and insertion curves (most important first) on a black and a blurred substrate, AUCs, Difference = insertion - deletion, and the two rounds' average"
            (fields {
                let! pixels = Fields.field fst (Param.int "pixels_per_step" "pixels changed per step (28 = one Fashion-MNIST row; at most the image's pixels)" (Some 28) 1 (Some Bounds.Pixels))
                and! sigma = Fields.field snd (Param.float "blur_sigma" "sigma of the blurred substrate, in pixels (NeFLAG: 20)" (Some 20.0) true Bounds.Magnitude)
                return pixels, sigma
            })
            InsertionDeletion
            (function
            | InsertionDeletion(p, s) -> Some(p, s)
            | _ -> None)

    let sensitivityN =
        Variant.make
            "sensitivity_n"
            "Ancona et al. 2018: for N on a log grid, Pearson correlation between the attribution summed over N random pixels and the drop of f when they are set to 0"
            (fields {
                let! masks = Fields.field fst (Param.int "masks" "random masks per N, shared across inputs" (Some 100) 2 (Some Bounds.Draws))
                and! points = Fields.field snd (Param.int "points" "values of N on the log grid" (Some 12) 1 (Some 100))
                return masks, points
            })
            SensitivityN
            (function
            | SensitivityN(m, p) -> Some(m, p)
            | _ -> None)

    let parameterRandomisation =
        Variant.make
            "parameter_randomisation"
            "Adebayo et al. 2018: re-initialise the layers from the output backwards and compare each map with the original (SSIM, Spearman)"
            (Fields.field id (Param.int "inputs" "explained inputs re-explained at each stage (the first ones)" (Some 20) 1 (Some Bounds.References)))
            ParameterRandomisation
            (function
            | ParameterRandomisation n -> Some n
            | _ -> None)

    let explanationCertainty =
        Variant.make
            "explanation_certainty"
            "Luo et al., Sampling Matters: mutual information between pixel values and their attributions (KSG, k = 3, nats)"
            (Fields.field id (Param.int "pairs" "(pixel, attribution) pairs sampled for the estimate" (Some 4096) 10 (Some 1_000_000)))
            ExplanationCertainty
            (function
            | ExplanationCertainty n -> Some n
            | _ -> None)

    let effectiveHeatRatio =
        Variant.constant "effective_heat_ratio" "Zhang et al. 2021 (InputIBA): heat inside the ground-truth box over pixels above each quantile threshold, area under that curve; inputs whose box covers at most a third of the image (needs dataset fashion_canvas)" EffectiveHeatRatio

    let roar =
        Variant.make
            "roar"
            "Hooker et al. 2019 (RemOve And Retrain): replace the most important fraction of pixels of training and explained test inputs by the training mean, retrain from scratch per fraction, test accuracy (and a random ranking for reference); reduced scale"
            (fields {
                let! fractions =
                    Fields.field (fun (r: RoarSpec) -> r.Fractions)
                        (Param.list "fractions" "fractions of the most important pixels removed" (Some [ 0.1; 0.3; 0.5; 0.7; 0.9 ]) Params.unitFraction "strictly increasing, in (0, 1)" Params.increasing)
                and! trainInputs = Fields.field (fun (r: RoarSpec) -> r.TrainInputs) (Param.int "train_inputs" "training inputs explained and retrained on (a seeded subset)" (Some 2000) 10 (Some 100_000))
                and! epochs = Fields.field (fun (r: RoarSpec) -> r.Epochs) (Param.int "epochs" "training epochs of each retrained model" (Some 4) 1 (Some Bounds.Epochs))
                return { Fractions = fractions; TrainInputs = trainInputs; Epochs = epochs }
            })
            Roar
            (function
            | Roar s -> Some s
            | _ -> None)

    let taylorFidelity =
        Variant.make
            "taylor_fidelity"
            "Deng et al. 2020: approximation error |sum a - (f(x) - f(0))|, and the error of the map of each input's second-order Taylor polynomial's independent part and interactive part against the ideal assignment (relative to the ideal's L1 size); baseline 0, f = explain.output"
            (Fields.field id (Param.int "inputs" "explained inputs assessed (the first ones); each costs d Hessian-vector products" (Some 10) 1 (Some Bounds.References)))
            TaylorFidelity
            (function
            | TaylorFidelity n -> Some n
            | _ -> None)

    let twoWord =
        Variant.make
            "two_word"
            "Gat et al. 2022, Fig. 2 (audio): an utterance of 'right' followed by one of 'cat' (test clips, 2 s), both classes explained; share of sum |map| on each class's own word (1 = all of it, 0.5 = none preferred)"
            (Fields.field id (Param.int "pairs" "'right' + 'cat' utterances built from test clips" (Some 20) 1 (Some 1000)))
            TwoWord
            (function
            | TwoWord n -> Some n
            | _ -> None)

    let metrics = [ negativePerturbation; rankAgreement; insertionDeletion; sensitivityN; parameterRandomisation; explanationCertainty; effectiveHeatRatio; roar; taylorFidelity; twoWord ]
    let metricNames = metrics |> List.map _.Name

    /// The yaml name of a metric.
    let metricName (m: MetricSpec) = metrics |> List.find (fun v -> (v.Encode m).IsSome) |> _.Name

    let metricSpec: Param<MetricSpec> =
        { Info = { Name = "metric"; Type = "metric"; Default = None; Allowed = String.Join(" | ", metricNames); Doc = "an evaluation metric" }
          Default = None
          Decode = fun ctx n -> Variant.decoder "metric" "metric" [] metrics ctx n |> Decoded.map snd
          Encode = Variant.encode "metric" metrics >> Out.Map
          Check = fun _ -> []
          Deep = Variant.issues metrics }

    // --- sections --------------------------------------------------------------------------------

    module Data =
        let dataset = Param.choice "dataset" "dataset" "the dataset" None Names.datasets
        let root = Param.optional (Param.string "root" "directory of the dataset files" None nonEmpty)
        let trainLimit = Param.optional (Param.int "train_limit" "use only the first n training examples" None 1 (Some 10_000_000))
        let explain = Param.int "explain" "number of test inputs to explain" (Some 1000) 1 (Some 10000)
        let utterances = Param.optional (Param.int "utterances_per_word" "speech_commands only: utterances synthesised per word (default 100)" None 4 (Some 1000))

        let fields =
            fields {
                let! dataset = Fields.field (fun (d: DataSpec) -> d.Dataset) dataset
                and! root = Fields.field (fun (d: DataSpec) -> d.Root) root
                and! trainLimit = Fields.field (fun (d: DataSpec) -> d.TrainLimit) trainLimit
                and! explain = Fields.field (fun (d: DataSpec) -> d.Explain) explain
                and! utterances = Fields.field (fun (d: DataSpec) -> d.UtterancesPerWord) utterances
                return { Dataset = dataset; Root = root; TrainLimit = trainLimit; Explain = explain; UtterancesPerWord = utterances }
            }

    module Model =
        let architecture = Param.choice "architecture" "architecture" "the network" None Names.architectures
        let epochs = Param.int "epochs" "training epochs" (Some 8) 1 (Some Bounds.Epochs)
        let batchSize = Param.int "batch_size" "training batch size" (Some 128) 1 (Some Bounds.BatchSize)
        let learningRate = Param.float "learning_rate" "Adam learning rate" (Some 0.001) true 10.0

        let weights =
            Param.optional (
                Param.string "weights" "a .safetensors file to load instead of training" None (fun s ->
                    if s.EndsWith(".safetensors", StringComparison.Ordinal) then None else Some "must be a .safetensors file")
            )

        let fields =
            fields {
                let! architecture = Fields.field (fun (m: ModelSpec) -> m.Architecture) architecture
                and! epochs = Fields.field (fun (m: ModelSpec) -> m.Epochs) epochs
                and! batchSize = Fields.field (fun (m: ModelSpec) -> m.BatchSize) batchSize
                and! learningRate = Fields.field (fun (m: ModelSpec) -> m.LearningRate) learningRate
                and! weights = Fields.field (fun (m: ModelSpec) -> m.Weights) weights
                return { Architecture = architecture; Epochs = epochs; BatchSize = batchSize; LearningRate = learningRate; Weights = weights }
            }

    module Explain =
        let private target = Param.choice "target" "target" "a target" None Names.targets

        let targets =
            Param.list "targets" "which class each map explains" (Some [ GroundTruth; Predicted ]) target "non-empty, no duplicates" (fun ts ->
                (if ts.IsEmpty then [ { Path = ""; Message = "at least one target is required"; Found = None } ] else [])
                @ duplicates "target" (fun t -> Names.targets |> List.find (snd >> (=) t) |> fst) "" ts)

        let output = Param.choice "output" "output function" "the differentiated output" (Some Probability) Names.outputs
        let batchSize = Param.int "batch_size" "inputs per forward/backward chunk" (Some 256) 1 (Some Bounds.BatchSize)

        let fields =
            fields {
                let! targets = Fields.field (fun (e: ExplainSpec) -> e.Targets) targets
                and! output = Fields.field (fun (e: ExplainSpec) -> e.Output) output
                and! batchSize = Fields.field (fun (e: ExplainSpec) -> e.BatchSize) batchSize
                return { Targets = targets; Output = output; BatchSize = batchSize }
            }

    module Report =
        let heatmapInputs = Param.int "heatmap_inputs" "inputs shown as heatmaps" (Some 6) 0 (Some 50)

        let fields =
            fields {
                let! n = Fields.field (fun (r: ReportSpec) -> r.HeatmapInputs) heatmapInputs
                return { HeatmapInputs = n }
            }

    module Full =
        let explain = Param.optional (Param.int "explain" "test inputs explained at full scale (default: all of them)" None 1 (Some 10_000_000))
        let epochs = Param.optional (Param.int "epochs" "training epochs at full scale (default: model.epochs)" None 1 (Some Bounds.Epochs))

        let fields =
            fields {
                let! explain = Fields.field (fun (f: FullSpec) -> f.Explain) explain
                and! epochs = Fields.field (fun (f: FullSpec) -> f.Epochs) epochs
                return { Explain = explain; Epochs = epochs }
            }

    module Top =
        let name = Param.string "name" "the experiment's name" None identCheck
        let seed = Param.make "seed" "int" "any int" "the global seed; each unit derives its own" (Some 0) Decode.int Out.int (fun _ -> None)
        let device = Param.choice "device" "device" "where tensors live" (Some Auto) Names.devices
        let output = Param.string "output" "folder of the runs" (Some "runs") nonEmpty
        let data = Fields.section "data" "the dataset" Data.fields
        let model = Fields.section "model" "the network to train or load" Model.fields
        let explain = Fields.section "explain" "what is explained" Explain.fields
        let report = Fields.section "report" "the report" Report.fields
        let full = Fields.section "full" "what run --full changes (the paper's scale)" Full.fields

        let methods =
            Param.list "methods" "the attribution methods to run" None methodSpec "non-empty; ids unique" (fun ms ->
                (if ms.IsEmpty then [ { Path = ""; Message = "at least one method is required"; Found = None } ] else [])
                @ duplicates "method id" _.Id "id" ms)

        let metrics =
            Param.list "metrics" "the evaluation metrics" (Some [ Variant.dflt negativePerturbation; RankAgreement ]) metricSpec "a list of metrics" (fun _ -> [])

    let specFields: Fields<Spec, Spec> =
        fields {
            let! name = Fields.field (fun (s: Spec) -> s.Name) Top.name
            and! seed = Fields.field (fun (s: Spec) -> s.Seed) Top.seed
            and! device = Fields.field (fun (s: Spec) -> s.Device) Top.device
            and! output = Fields.field (fun (s: Spec) -> s.Output) Top.output
            and! data = Fields.field (fun (s: Spec) -> s.Data) Top.data
            and! model = Fields.field (fun (s: Spec) -> s.Model) Top.model
            and! explain = Fields.field (fun (s: Spec) -> s.Explain) Top.explain
            and! methods = Fields.field (fun (s: Spec) -> s.Methods) Top.methods
            and! metrics = Fields.field (fun (s: Spec) -> s.Metrics) Top.metrics
            and! report = Fields.field (fun (s: Spec) -> s.Report) Top.report
            and! full = Fields.field (fun (s: Spec) -> s.Full) Top.full
            return
                { Name = name
                  Seed = seed
                  Device = device
                  Output = output
                  Data = data
                  Model = model
                  Explain = explain
                  Methods = methods
                  Metrics = metrics
                  Report = report
                  Full = full }
        }

    /// The whole spec, read from a document's root mapping.
    let decodeSpec: Decoder<Spec> = Fields.decoder "unknown top-level key" specFields

    /// Every rule broken by a spec value, with paths from the root (used for specs built in F#).
    let issues (spec: Spec) : Issue list = specFields.Issues spec

    /// The spec as written back (Yaml.render prints it).
    let encode (spec: Spec) : (string * Out) list = specFields.Encode spec

    // --- `list` ----------------------------------------------------------------------------------

    let private describeParams (ps: ParamInfo list) =
        if ps.IsEmpty then [ "      (no parameters)" ]
        else
            ps
            |> List.map (fun p ->
                let dflt = p.Default |> Option.defaultValue "required"
                sprintf "      %-16s %-18s default %s; allowed %s. %s" p.Name p.Type dflt p.Allowed p.Doc)

    let private describeVariants (title: string) (vs: Variant<'k> list) =
        title
        :: (vs |> List.collect (fun v -> sprintf "  %-24s %s" v.Name v.Doc :: describeParams v.Params))

    let private describeSection (name: string) (ps: ParamInfo list) = sprintf "  %s" name :: describeParams ps

    /// The text of `list`: methods, samplers, metrics and sections, each with parameters and defaults.
    let describe () : string =
        [ yield! describeVariants "Methods (methods: - method: NAME, parameters beside it; id defaults to NAME)" methods
          yield ""
          yield! describeVariants "Samplers (sampler: { kind: NAME, ... })" samplers
          yield ""
          yield! describeVariants "Metrics (metrics: - metric: NAME, parameters beside it)" metrics
          yield ""
          yield "Sections"
          yield! describeSection "(top level)" (specFields.Params |> List.filter (fun p -> p.Type <> "mapping"))
          yield! describeSection "data" Data.fields.Params
          yield! describeSection "model" Model.fields.Params
          yield! describeSection "explain" Explain.fields.Params
          yield! describeSection "report" Report.fields.Params
          yield! describeSection "full" Full.fields.Params ]
        |> String.concat Environment.NewLine
