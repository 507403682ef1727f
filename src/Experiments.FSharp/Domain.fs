/// A dataset and its model family as the runner sees them, whatever the modality: what is known of the data and the
/// model before anything is loaded (shapes, modality, classes, boxes; which methods a model supports: stages, module
/// paths, ReLUs), and the Domain record the runner works through. Methods, samplers and metrics think in "method
/// inputs" [N, C, H, W]; ImageDomain, TextDomain and AudioDomain map each modality onto that shape and back, and
/// DataSources picks one for a spec.
module Experiments.Domain

open System
open System.Collections.Generic
open System.IO
open TorchSharp
open Attribution.Data
open Attribution.Methods
open Attribution.Metrics
open Attribution.Models
open Attribution.Runtime
open Attribution.Sampling
open Experiments

type Tensor = torch.Tensor
type Network = torch.nn.Module<Tensor, Tensor>


/// The loader's options of an image folder spec.
let imageFolderOptions (s: ImageFolderSpec) =
    ImageFolderOptions(Resize = (s.Resize |> Option.map Array.ofList |> Option.toObj), CenterCrop = (s.CenterCrop |> Option.map Array.ofList |> Option.toObj),
                       Channels = (if s.Grayscale then ImageFolderOptions.Grayscale else ImageFolderOptions.Rgb))

/// ImageFolder.InputShape, read once per folder, transforms and folder time in a process (validation asks often, and
/// a folder of thousands of images has as many headers to read).
let private folderShapes = System.Collections.Concurrent.ConcurrentDictionary<string, int * int * int>()

let private folderShape (s: ImageFolderSpec) =
    let key = $"{Path.GetFullPath s.Path}|{Directory.GetLastWriteTimeUtc s.Path:O}|%A{s.Resize}|%A{s.CenterCrop}|{s.Grayscale}"
    folderShapes.GetOrAdd(key, fun _ ->
        let struct (c, h, w, _) = ImageFolder.InputShape(s.Path, imageFolderOptions s)
        (c, h, w))

/// The per-input shape [C, H, W] of an image dataset, known before its data is read (a user's data file: from its
/// header; an image folder: from its files' headers). None when it cannot be read (Validate reports why).
let imageShape (dataset: DatasetKind) : (int * int * int) option =
    match dataset with
    | RegisteredDataset name ->
        match DatasetRegistry.tryFind name with
        | Some e when e.Modality = Modality.Image -> Some e.Shape
        | _ -> None
    | ImageFolder s -> (try Some(folderShape s) with _ -> None)
    | FashionMnist -> Some(1, 28, 28)
    | FashionCanvas -> Some(1, CanvasOptions().Size, CanvasOptions().Size)
    | TensorFile path ->
        try
            match Safetensors.ReadShapes(path).TryGetValue "test_inputs" with
            | true, shape when shape.Length = 4 -> Some(int shape.[1], int shape.[2], int shape.[3])
            | _ -> None
        with _ -> None
    | SpamAssassin | SpeechCommands | TextFile _ -> None

/// The number of features of tabular data (a user's data file of inputs [N, F]); None for other data.
let tabularFeatures (dataset: DatasetKind) : int option =
    match dataset with
    | TensorFile path ->
        try
            match Safetensors.ReadShapes(path).TryGetValue "test_inputs" with
            | true, shape when shape.Length = 2 -> Some(int shape.[1])
            | _ -> None
        with _ -> None
    | RegisteredDataset name ->
        match DatasetRegistry.tryFind name with
        | Some e when e.Modality = Modality.Tabular -> (let _, _, f = e.Shape in Some f)
        | _ -> None
    | _ -> None

/// The grid [C, H, W] that pixel-wise methods and metrics walk: an image's, or a tabular row's [1, 1, F].
let inputGrid (dataset: DatasetKind) : (int * int * int) option =
    match tabularFeatures dataset with
    | Some f -> Some(1, 1, f)
    | None -> imageShape dataset

/// Whether the test inputs come with ground-truth regions, boxes or masks (the localisation metrics need them).
let hasBoxes (dataset: DatasetKind) =
    match dataset with
    | FashionCanvas -> true
    | RegisteredDataset name -> DatasetRegistry.tryFind name |> Option.exists _.HasBoxes
    | TensorFile path ->
        try
            let shapes = Safetensors.ReadShapes path
            shapes.ContainsKey "test_boxes" || shapes.ContainsKey "test_masks"
        with _ -> false
    | _ -> false

/// The side of an image dataset's images for the rules on windows and boxes: the shorter one.
let imageSide (dataset: DatasetKind) =
    match imageShape dataset with
    | Some(_, h, w) -> min h w
    | None -> invalidArg "dataset" $"{Hashing.display dataset} is not an image dataset of a known shape"

/// The number of classes of a dataset, where it is known before its data is read.
let classCount (dataset: DatasetKind) =
    match dataset with
    | FashionMnist | FashionCanvas -> Some 10
    | SpamAssassin -> Some 2
    | SpeechCommands -> Some 35
    | TensorFile _ | ImageFolder _ | TextFile _ | RegisteredDataset _ -> None

let modalityOf (dataset: DatasetKind) =
    match dataset with
    | TensorFile _ when (tabularFeatures dataset).IsSome -> Modality.Tabular
    | RegisteredDataset name -> DatasetRegistry.tryFind name |> Option.map _.Modality |> Option.defaultValue Modality.Image
    | FashionMnist | FashionCanvas | TensorFile _ | ImageFolder _ -> Modality.Image
    | SpamAssassin | TextFile _ -> Modality.Text
    | SpeechCommands -> Modality.Audio

/// A spec's name of a dataset: its yaml name, or the file it is read from.
let datasetName (dataset: DatasetKind) =
    match dataset with
    | TensorFile path -> $"tensors {path}"
    | ImageFolder s -> $"images {s.Path}"
    | TextFile path -> $"text {path}"
    | RegisteredDataset name -> name
    | d -> Vocabulary.Names.datasets |> List.find (snd >> (=) d) |> fst

/// A spec's name of a model: its yaml name, or the file it is read from.
let architectureName (architecture: Architecture) =
    match architecture with
    | TorchScript path -> $"torchscript {path}"
    | TorchVision name -> $"torchvision {name}"
    | RegisteredModel name -> name
    | a -> Vocabulary.Names.architectures |> List.find (snd >> (=) a) |> fst

/// The architectures that can be trained on a modality (validation names them); a TorchScript model goes with images.
let architecturesFor (modality: Modality) : Architecture list =
    match modality with
    | Modality.Image -> [ FashionCnn; SmallResNet ]
    | Modality.Audio -> [ M5 ]
    | Modality.Text -> [ TextLstm; TextBiLstm; TextCnn; TextTransformer ]
    | Modality.Tabular -> [ Mlp ]

/// Whether a model fits a modality: a shipped architecture of it, a TorchScript model on images or tabular data, or a
/// TorchVision model on images.
let fits (modality: Modality) (architecture: Architecture) =
    match architecture with
    | TorchScript _ -> modality = Modality.Image || modality = Modality.Tabular
    | TorchVision _ -> modality = Modality.Image
    | RegisteredModel name -> ModelRegistry.tryFind name |> Option.exists (fun e -> List.contains modality e.Modalities)
    | a -> List.contains a (architecturesFor modality)

/// The per-input shape a network takes for data of a modality: [F] for tabular rows, [C, H, W] for images.
let modelInputShape (dataset: DatasetKind) : int[] option =
    match tabularFeatures dataset with
    | Some f -> Some [| f |]
    | None -> imageShape dataset |> Option.map (fun (c, h, w) -> [| c; h; w |])

/// A TorchVision or registered network with random weights, for the data's shape: what validation reads module paths,
/// wiring and ReLUs from (properties of the architecture, not of its weights). None for the others.
let private probeNetwork (architecture: Architecture) (dataset: DatasetKind) : Network option =
    match architecture, modelInputShape dataset with
    | TorchVision name, _ -> Some(Attribution.Models.TorchVisionModels.Create(name, 10))
    | RegisteredModel name, Some shape -> ModelRegistry.tryFind name |> Option.map (fun e -> e.Build shape 10)
    | _ -> None

/// What validation learns from probing a network, kept per architecture and data shape (validation asks for each
/// method, and a spec is validated more than once before a run): building a ResNet-152 and running it takes seconds.
type private Probe = { Paths: string list; Rectified: bool }

let private probes = System.Collections.Concurrent.ConcurrentDictionary<string, Probe>()
let private stageProblems = System.Collections.Concurrent.ConcurrentDictionary<string, string option>()

let private probeKey (architecture: Architecture) (dataset: DatasetKind) =
    // a registered network by its entry, not only its name: one re-registered under the same name is probed anew
    let entry =
        match architecture with
        | RegisteredModel name -> ModelRegistry.tryFind name |> Option.map (fun e -> string (System.Runtime.CompilerServices.RuntimeHelpers.GetHashCode e)) |> Option.defaultValue ""
        | _ -> ""
    $"%A{architecture}|{entry}|%A{modelInputShape dataset}"

let private probe (architecture: Architecture) (dataset: DatasetKind) =
    probes.GetOrAdd(probeKey architecture dataset, fun _ ->
        match probeNetwork architecture dataset with
        | Some network ->
            use model = network
            { Paths = [ for struct (path, m) in model.named_modules() do
                          if path <> "" && (m :? torch.nn.Module<Tensor, Tensor>) then yield path ]
              Rectified = (box model) :? Attribution.Models.IRectifiedModel }
        | None -> { Paths = []; Rectified = false })

/// Architectures whose ReLUs can be swapped (rule-based methods need that); a TorchScript model's cannot, nor a
/// TorchVision model's (TorchSharp's ResNet blocks apply relu_ as a function, out of reach of a module swap); a
/// registered network's can when it implements IRectifiedModel.
let hasRectifiers (architecture: Architecture) (dataset: DatasetKind) =
    match architecture with
    | FashionCnn | SmallResNet | M5 | Mlp -> true
    | TextLstm | TextBiLstm | TextCnn | TextTransformer | TorchScript _ | TorchVision _ -> false
    | RegisteredModel _ -> (probe architecture dataset).Rectified

/// The named stages of an architecture that layer methods can use, in forward order: spatial maps for Grad-CAM, IBA
/// and InputIBA on images; per-position features [T, H] for IBA and InputIBA on text (the reference code's LSTM layer).
/// A TorchScript model has none the toolkit can cut at.
let spatialStagesOf (architecture: Architecture) =
    match architecture with
    | FashionCnn -> [ "conv1"; "pool1"; "conv2"; "pool2" ]
    | SmallResNet -> [ "stem"; "stage1"; "stage2"; "stage3" ]
    | TextLstm | TextBiLstm -> [ "lstm" ]
    | TextCnn -> [ "conv" ]
    | TextTransformer -> [ "norm" ]
    | M5 | Mlp | TorchScript _ | TorchVision _ | RegisteredModel _ -> []

/// Whether layer methods reach the model's modules by path (forward hooks, Attribution.Models.ModuleLayers).
let byModulePath (architecture: Architecture) =
    match architecture with
    | TorchVision _ | RegisteredModel _ -> true
    | _ -> false

/// The stages a spec may name for a model on its data: a shipped architecture's named stages, or any module path of a
/// TorchVision or registered network.
let stagesOf (architecture: Architecture) (dataset: DatasetKind) =
    if byModulePath architecture then (probe architecture dataset).Paths else spatialStagesOf architecture

/// Why a stage cannot serve a layer method (a skip connection bypasses it, it runs twice), if it cannot: checked on
/// the architecture with random weights, since that is a property of its wiring (once per architecture, shape, stage).
let stageProblem (architecture: Architecture) (stage: string) (dataset: DatasetKind) =
    stageProblems.GetOrAdd($"{probeKey architecture dataset}|{stage}", fun _ ->
        match probeNetwork architecture dataset, inputGrid dataset, modelInputShape dataset with
        | Some network, Some(c, h, w), Some shape ->
            use model = network
            model.eval() |> ignore
            // The hooks see the network as the runner does: tabular rows [1, 1, F] reshaped to [F].
            use view : Network = if shape.Length = 1 then new ReshapedModel(model, [| int64 shape.[0] |], [| 1L; 1L; int64 shape.[0] |]) else model
            use layered = new Attribution.Models.ModuleLayers(view, model, [| int64 c; int64 h; int64 w |])
            try layered.CheckStage stage; None
            with :? ArgumentException as e -> Some e.Message
        | _ -> None)

/// The stages an error lists: all of them, or for a network by module path the paths of at most one dot (layer4, layer4.1).
let shownStagesOf (architecture: Architecture) (dataset: DatasetKind) =
    if byModulePath architecture then stagesOf architecture dataset |> List.filter (fun p -> p |> Seq.filter ((=) '.') |> Seq.length <= 1)
    else spatialStagesOf architecture

/// Architectures MIP-IN can invert stage by stage (ILayeredModel.ForwardStage).
let invertibleStages (architecture: Architecture) = architecture = FashionCnn

/// Whether a model can be cut into stages (parameter randomisation re-initialises them): a TorchScript model cannot,
/// nor a TorchVision one (its modules are reached by path, not re-initialised stage by stage).
let layered (architecture: Architecture) =
    match architecture with
    | TorchScript _ | TorchVision _ | Mlp | RegisteredModel _ -> false
    | _ -> true

/// How the explained inputs are shown to a person (the report's pictures).
type InputView =
    | ImageView
    /// Waveforms [N, 1, L] at the sample rate.
    | AudioView of waveforms: Tensor * sampleRate: int
    /// Token ids [N, T], real lengths [N] and the vocabulary that decodes them.
    | TextView of tokens: Tensor * lengths: Tensor * vocabulary: Vocabulary
    /// Feature vectors, shown by the names of their features.
    | TabularView of features: string list

type Domain =
    { Modality: Modality
      ClassNames: string list
      TrainCount: int
      TestCount: int
      /// Labels [N] (int64, CPU).
      TrainLabels: Tensor
      TestLabels: Tensor
      /// Ground-truth boxes of the test inputs, for datasets that have them.
      Boxes: IReadOnlyList<IRegion> option
      /// A freshly initialised network of the spec's architecture (seed torch first).
      NewModel: unit -> Network
      Train: Network -> TrainingOptions -> torch.Device -> Progress -> TrainingReport
      /// Test accuracy of a trained network.
      Accuracy: Network -> torch.Device -> float
      /// The function methods explain: the network seen on method inputs.
      Explained: Network -> Network
      /// Method inputs [n, C, H, W] (CPU) of training (true) or test (false) rows.
      Inputs: Network -> bool -> int64[] -> Tensor
      /// Class covariances over method inputs, with a relative jitter.
      Covariance: Network -> float -> torch.Device -> ClassCovariance
      /// Negative perturbation of the network (not its view): predicted classes [F, n] (CPU) of test rows after masking, per fraction, the least
      /// important features by `maps` (method-input shape); the mask value applies where the modality masks with a number.
      /// Ties are broken by draws from the generator, so that a set masked a block at a time (blocks a multiple of 1,024
      /// rows) from one generator gets the predictions of the whole set at once.
      MaskedPredictions: Network -> int64[] -> Tensor -> float list -> float -> torch.Generator -> torch.Device -> Tensor
      /// The features MaskedPredictions ranks per input, each drawing one tie-breaking value: a block of rows masked
      /// apart from the blocks before it starts its generator past them (MetricBlocks).
      MaskedSlots: int64
      /// How test rows are shown.
      View: int64[] -> InputView
      /// The audio sets (the two-word experiment builds new utterances from the test clips).
      Speech: (Attribution.Data.Audio.AudioDataset * Attribution.Data.Audio.AudioDataset) option }

let deviceOf (model: Network) =
    model.parameters() |> Seq.tryHead |> Option.map (fun p -> p.device) |> Option.defaultValue torch.CPU
