namespace Experiments

// The shared vocabulary of specs, declared once: the rules of names and paths, the yaml names of the closed
// enumerations, the parameters many methods and metrics share (with their defaults, ranges and docs), their upper
// bounds, and the samplers. Method entries (Methods/), the catalogue of metrics and sections (Catalogue.fs), the
// YAML decoder, the F# builders and `list` all read these declarations.

open System
open System.Text.RegularExpressions

module Vocabulary =

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
        elif not (Regex.IsMatch(s, @"\A[a-z0-9][a-z0-9_.-]*\z")) then
            Some "must be lower-case letters, digits, '_', '-' and '.', starting with a letter or digit (it names files and folders; write sg_0.05, not SG 0.05)"
        // Windows drops a final dot from a file name, so 'a.' and 'a' would be one folder there.
        elif s.EndsWith "." then Some "must not end with '.' (Windows drops it from file names)"
        elif reservedNames.Contains s then Some "is a device name on Windows and cannot name a file there"
        else None

    let isIdent (s: string) = (identProblem s).IsNone

    let identCheck (s: string) = identProblem s

    /// A path: not empty, one line, no control characters (a NUL ends the path for the operating system).
    let pathProblem (s: string) =
        if String.IsNullOrWhiteSpace s then Some "must not be empty"
        elif s |> Seq.exists Char.IsControl then Some "must not hold control characters (a NUL, a newline, a tab)"
        else None

    let nonEmpty (s: string) = pathProblem s

    /// Issues for the later items of a list that repeat an earlier key.
    let duplicates (what: string) (key: 'a -> 'b) (sub: string) (xs: 'a list) : Issue list =
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
        let precisions = [ "fp32", Fp32; "tf32", Tf32; "bf16", Bf16 ]
        let datasets = [ "fashion_mnist", FashionMnist; "fashion_canvas", FashionCanvas; "spam_assassin", SpamAssassin; "speech_commands", SpeechCommands ]
        let architectures = [ "fashion_cnn", FashionCnn; "small_resnet", SmallResNet; "text_lstm", TextLstm; "text_bilstm", TextBiLstm; "text_cnn", TextCnn; "text_transformer", TextTransformer; "m5", M5; "mlp", Mlp ]
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

        /// Integrated Gradients' steps: a count as `steps`, or `auto`.
        let integrationSteps =
            let decode =
                Decode.scalar "an integer or auto" (fun s ->
                    if s = "auto" then Some AutoSteps
                    else
                        match Int32.TryParse(s, Globalization.NumberStyles.AllowLeadingSign, Globalization.CultureInfo.InvariantCulture) with
                        | true, n -> Some(FixedSteps n)
                        | _ -> None)
            let encode = function FixedSteps n -> Out.int n | AutoSteps -> Out.Plain "auto"
            let check = function
                | FixedSteps n when n < 1 || n > Bounds.Draws -> Some $"must be between 1 and {Bounds.Draws}, or auto"
                | _ -> None
            Param.make "steps" "int | auto" $"1..{Bounds.Draws} | auto"
                "number of integration points (Captum's n_steps); auto: 16, 32, ... up to max_steps per input, until the completeness gap is within tolerance"
                (Some(FixedSteps 50)) decode encode check

        /// With `steps: auto`: the largest completeness gap |sum of the map - (f(x) - f(0))| accepted, relative to |f(x) - f(0)|.
        let tolerance =
            let p = Param.optional (Param.float "tolerance" "steps: auto only: the completeness gap |sum of the map - (f(x) - f(0))| accepted, relative to |f(x) - f(0)| (so the same on probabilities and logits)" None true 1.0)
            { p with Info = { p.Info with Default = Some $"{Attribution.Methods.AdaptiveIntegratedGradients.DefaultTolerance} with auto" } }

        /// With `steps: auto`: the last round's points.
        let maxIntegrationSteps =
            let p = Param.optional (Param.int "max_steps" "steps: auto only: the most points an input gets; one that reaches them with its gap above the tolerance is reported" None Attribution.Methods.AdaptiveIntegratedGradients.DefaultStartSteps (Some Bounds.Draws))
            { p with Info = { p.Info with Default = Some $"{Attribution.Methods.AdaptiveIntegratedGradients.DefaultMaxSteps} with auto" } }
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
        /// A layer by name: a shipped architecture's stage, or a TorchVision model's module path (validation checks
        /// it against the spec's model, with "did you mean").
        let stageNamed doc =
            Param.make "stage" "stage" (String.Join(" | ", Names.spatialStages |> List.map fst) + " | a TorchVision module path (layer4)") doc (Some "conv2")
                Decode.string Out.Str (fun s -> if String.IsNullOrWhiteSpace s then Some "a stage name" else None)
        let stage = stageNamed "the layer whose activation is weighted"

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

    /// The shipped samplers.
    let shippedSamplers = [ isotropicGaussian; covarianceGaussian; conditionalGaussian; bernoulliSuppression; epsilonSphere ]

    // The codecs of samplers registered from a user's code (SamplerRegistry.register adds them, with their factories).
    let private registeredSamplers = Collections.Generic.List<Variant<SamplerSpec>>()

    /// Every sampler's codec: the shipped ones, then the registered ones.
    let samplers () = shippedSamplers @ lock registeredSamplers (fun () -> List.ofSeq registeredSamplers)

    let samplerNames () = samplers () |> List.map _.Name

    /// Adds a registered sampler's codec (SamplerRegistry.register); removes it (tests).
    let addSampler (variant: Variant<SamplerSpec>) = lock registeredSamplers (fun () -> registeredSamplers.Add variant)
    let removeSampler (name: string) = lock registeredSamplers (fun () -> registeredSamplers.RemoveAll(fun v -> v.Name = name) |> ignore)

    let sampler (dflt: SamplerSpec) =
        Variant.paramOf "sampler" "the distribution of the draws around x" "kind" "sampler" (Some dflt) samplers


    /// The sampling parameters of a method that draws around the input: how many draws, and from which sampler.
    let sampling (minSamples: int) (dflt: SamplerSpec) : Fields<SamplingParams, SamplingParams> =
        fields {
            let! samples = Fields.field (fun (p: SamplingParams) -> p.Samples) (Params.samples minSamples)
            and! sampler = Fields.field (fun (p: SamplingParams) -> p.Sampler) (sampler dflt)
            return { Samples = samples; Sampler = sampler }
        }

    /// SmoothGrad's sampler at its default noise.
    let isotropic = IsotropicGaussian(Param.dflt Params.stdev)
