/// A dataset and its model family as the runner sees them, whatever the modality. Methods, samplers and metrics
/// think in "method inputs" [N, C, H, W]; this module maps each modality onto that shape and back:
/// - images are what they are;
/// - text: the embeddings [N, T, E] of the trained model, seen as [N, T, 1, E], so that the class covariance is
///   one E x E matrix shared by every position (Functional Information, App. B); masking a word replaces it with
///   <unk> (Sec. 5.2), and a word's score is the sum of its embedding coordinates' scores (footnote 2);
/// - audio: waveforms [N, 1, L] seen as frames [N, L/w, 1, w], so that the class covariance is one w x w matrix
///   shared by every frame (a full L x L one is 1 GB a class at 16 kHz); masking sets samples to the mask value (0).
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

/// Whether the test inputs come with ground-truth boxes (the localisation metrics need them).
let hasBoxes (dataset: DatasetKind) =
    match dataset with
    | FashionCanvas -> true
    | RegisteredDataset name -> DatasetRegistry.tryFind name |> Option.exists _.HasBoxes
    | TensorFile path -> (try Safetensors.ReadShapes(path).ContainsKey "test_boxes" with _ -> false)
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

/// Architectures whose ReLUs can be swapped (rule-based methods need that); a TorchScript model's cannot, nor a
/// TorchVision model's (TorchSharp's ResNet blocks apply relu_ as a function, out of reach of a module swap); a
/// registered network's can when it implements IRectifiedModel.
let hasRectifiers (architecture: Architecture) (dataset: DatasetKind) =
    match architecture with
    | FashionCnn | SmallResNet | M5 | Mlp -> true
    | TextLstm | TextBiLstm | TextCnn | TextTransformer | TorchScript _ | TorchVision _ -> false
    | RegisteredModel _ ->
        match probeNetwork architecture dataset with
        | Some network -> (use n = network in (box n) :? Attribution.Models.IRectifiedModel)
        | None -> false

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

/// The module paths of a network (read once per architecture and data shape).
let private modulePaths =
    let known = System.Collections.Concurrent.ConcurrentDictionary<string, string list>()
    fun (architecture: Architecture) (dataset: DatasetKind) ->
        known.GetOrAdd($"%A{architecture}|%A{modelInputShape dataset}", fun _ ->
            match probeNetwork architecture dataset with
            | Some network ->
                use model = network
                [ for struct (path, m) in model.named_modules() do
                    if path <> "" && (m :? torch.nn.Module<Tensor, Tensor>) then yield path ]
            | None -> [])

/// The stages a spec may name for a model on its data: a shipped architecture's named stages, or any module path of a
/// TorchVision or registered network.
let stagesOf (architecture: Architecture) (dataset: DatasetKind) =
    if byModulePath architecture then modulePaths architecture dataset else spatialStagesOf architecture

/// Why a stage cannot serve a layer method (a skip connection bypasses it, it runs twice), if it cannot: checked on
/// the architecture with random weights, since that is a property of its wiring.
let stageProblem (architecture: Architecture) (stage: string) (dataset: DatasetKind) =
    match probeNetwork architecture dataset, inputGrid dataset, modelInputShape dataset with
    | Some network, Some(c, h, w), Some shape ->
        use model = network
        model.eval() |> ignore
        // The hooks see the network as the runner does: tabular rows [1, 1, F] reshaped to [F].
        use view : Network = if shape.Length = 1 then new ReshapedModel(model, [| int64 shape.[0] |], [| 1L; 1L; int64 shape.[0] |]) else model
        use layered = new Attribution.Models.ModuleLayers(view, model, [| int64 c; int64 h; int64 w |])
        try layered.CheckStage stage; None
        with :? ArgumentException as e -> Some e.Message
    | _ -> None

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
      Boxes: IReadOnlyList<Box> option
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
      MaskedPredictions: Network -> int64[] -> Tensor -> float list -> float -> int64 -> torch.Device -> Tensor
      /// How test rows are shown.
      View: int64[] -> InputView
      /// The audio sets (the two-word experiment builds new utterances from the test clips).
      Speech: (Attribution.Data.Audio.AudioDataset * Attribution.Data.Audio.AudioDataset) option }

let private deviceOf (model: Network) =
    model.parameters() |> Seq.tryHead |> Option.map (fun p -> p.device) |> Option.defaultValue torch.CPU

// --- images -----------------------------------------------------------------------------------------

/// A fresh network for image data [C, H, W] of `classes` classes: a shipped architecture sized to them, or the user's
/// TorchScript model (loaded anew: it is never trained).
let private imageModel (architecture: Architecture) (shape: int[]) (classes: int) : Network =
    // One input's shape as the network takes it: [C, H, W], or [F] for tabular rows.
    let channels, side = (if shape.Length = 1 then 1 else shape.[0]), Array.last shape
    match architecture with
    | FashionCnn -> new Attribution.Models.FashionCnn(Attribution.Models.FashionCnn.Shape(InputChannels = channels, ImageSize = side, Classes = classes))
    | SmallResNet -> new Attribution.Models.SmallResNet(Attribution.Models.SmallResNet.Shape(InputChannels = channels, ImageSize = side, Classes = classes))
    | TorchScript path -> Attribution.Models.TorchScriptModel.Load path
    | TorchVision name -> Attribution.Models.TorchVisionModels.Create(name, classes)
    | Mlp -> new Attribution.Models.Mlp(Attribution.Models.Mlp.Shape(side, classes))
    | RegisteredModel name -> (ModelRegistry.find name).Build shape classes
    | other -> invalidArg "architecture" $"{Hashing.display other} is not an image model"

/// The number of classes of a TorchVision model's weights: the first dimension of its classifier's last weight
/// (0 when the file does not have it: the load then lists what differs).
let weightClasses (architecture: string) (weights: string) =
    let key = Attribution.Models.TorchVisionModels.ClassifierWeight architecture
    if weights.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase) then
        match Safetensors.ReadShapes(weights).TryGetValue key with
        | true, shape when shape.Length = 2 -> int shape.[0]
        | _ -> 0
    else
        let tensors = Attribution.Models.StateDict.Read weights
        try
            match tensors.TryGetValue key with
            | true, t when t.dim() = 2L -> int t.shape.[0]
            | _ -> 0
        finally
            for t in tensors.Values do t.Dispose()

/// The image domain of training and test sets (and the test inputs' boxes, when known): what the runner needs of them
/// and of the spec's model, whose input normalisation (if any) is part of the explained function.
let private imageDomain (spec: Spec) (train: ImageDataset) (test: ImageDataset) (boxes: IReadOnlyList<Box> option) (features: string list option) =
    let tabular = features.IsSome
    let select (data: ImageDataset) (rows: int64[]) = use index = torch.tensor(rows) in data.Images.index_select(0L, index)
    let normalised (network: Network) : Network =
        match spec.Model.Normalise with
        | Some n -> new Attribution.Models.Normalised(network, Array.ofList n.Mean, Array.ofList n.Std)
        | None -> network
    let inputShape = test.Images.shape.[1..]
    // A TorchVision or registered network's modules are its stages, by path, reached through hooks on the view.
    let view (network: Network) : Network =
        // Tabular rows are held as [1, 1, F]; the model (and its normalisation, per feature) sees [F].
        let seen = if tabular then new ReshapedModel(normalised network, [| inputShape.[2] |], inputShape) :> Network else normalised network
        if byModulePath spec.Model.Architecture then new Attribution.Models.ModuleLayers(seen, network, inputShape) else seen
    // The model has as many outputs as its weights say (e.g. ImageNet's 1000, of which the data's labels are indices).
    let classes =
        match spec.Model.Architecture, spec.Model.Weights with
        | TorchVision name, Some weights -> max (weightClasses name weights) (max test.ClassNames.Count train.ClassNames.Count)
        | _ -> max test.ClassNames.Count train.ClassNames.Count
    { Modality = if tabular then Modality.Tabular else Modality.Image
      ClassNames = List.ofSeq test.ClassNames
      TrainCount = train.Count
      TestCount = test.Count
      TrainLabels = train.Labels
      TestLabels = test.Labels
      Boxes = boxes
      NewModel =
        fun () ->
            let shape = if tabular then [| int inputShape.[2] |] else Array.map int inputShape
            imageModel spec.Model.Architecture shape classes
      Train = fun model options device progress -> Training.Train(view model, train, options, device, progress)
      Accuracy = fun model device -> Training.Accuracy(view model, test, device)
      Explained = view
      Inputs = fun _ isTrain rows -> select (if isTrain then train else test) rows
      Covariance = fun _ jitter device -> ClassCovariance.Estimate(train.Images, train.Labels, train.ClassNames.Count, jitter, device)
      MaskedPredictions =
        fun model rows maps fractions maskValue seed device ->
            use inputs = select test rows
            Attribution.Metrics.NegativePerturbation(Array.ofList fractions, maskValue).MaskedPredictions(view model, inputs, maps, seed, device)
      View = fun _ -> match features with Some names -> TabularView names | None -> ImageView
      Speech = None }

/// An image folder's set with the labels of the spec's class order (its `classes`), or as loaded (sorted names).
let private inStatedOrder (s: ImageFolderSpec) (data: ImageDataset) =
    match s.Classes with
    | None -> data
    | Some stated ->
        // label k of the folder (its k-th sorted name) becomes the position of that name in the stated order
        let mapping = [| for name in data.ClassNames -> int64 (List.findIndex ((=) name) stated) |]
        use table = torch.tensor(mapping)
        new ImageDataset(data.Images.alias(), table.index_select(0L, data.Labels), Array.ofList stated)

let private images (spec: Spec) =
    let items train limit = FashionMnist.Load(Option.toObj spec.Data.Root, train, limit)
    match spec.Data.Dataset with
    | FashionCanvas ->
        let canvas train limit unit =
            let source = items train limit
            Progress.say $"data: placing {source.Count} items on {CanvasOptions().Size}px canvases ({unit})"
            LocalisationCanvas.Build(source, source.Count, Seeds.Derive(int64 spec.Seed, $"canvas/{unit}"))
        let train = canvas true (Option.toNullable spec.Data.TrainLimit) "train"
        let test = canvas false (Nullable()) "test"
        imageDomain spec train.Images test.Images (Some test.Boxes) None
    | TensorFile path ->
        let data = TensorFile.Load path
        let train =
            match spec.Data.TrainLimit with
            | Some n when n < data.Train.Count -> data.Train.Take n
            | _ -> data.Train
        imageDomain spec train data.Test (data.Boxes |> Option.ofObj |> Option.map (fun b -> b :> IReadOnlyList<Box>))
            (if data.Tabular then Some(List.ofSeq (nonNull data.FeatureNames)) else None)
    | RegisteredDataset name ->
        let entry = DatasetRegistry.find name
        let parts = entry.Load spec.Seed
        let train =
            match spec.Data.TrainLimit with
            | Some n when n < parts.Train.Count -> parts.Train.Take n
            | _ -> parts.Train
        imageDomain spec train parts.Test (parts.Boxes |> Option.map (fun b -> b :> IReadOnlyList<Box>))
            (if entry.Modality = Modality.Tabular then Some(parts.Features |> Option.defaultWith (fun () -> [ for k in 0 .. int parts.Test.Images.shape.[3] - 1 -> $"feature_{k}" ])) else None)
    | ImageFolder s ->
        Progress.say $"data: decoding the images of {s.Path}"
        let data = ImageFolder.Load(s.Path, imageFolderOptions s)
        if not data.SeparateTest then Progress.say $"data: {s.Path} has no train/ and test/ folders: its images serve as both"
        let relabel = inStatedOrder s
        let train =
            match spec.Data.TrainLimit with
            | Some n when n < data.Train.Count -> relabel (data.Train.Take n)
            | _ -> relabel data.Train
        imageDomain spec train (relabel data.Test) None None
    | _ -> imageDomain spec (items true (Option.toNullable spec.Data.TrainLimit)) (items false (Nullable())) None None

// --- text ---------------------------------------------------------------------------------------------

/// Sequence length, vocabulary and split of the text corpus: the first 128 tokens of an e-mail (its subject and
/// opening: a recurrent model over 256 steps trains too slowly on 2 cores), vocabulary of at most 20,000 words
/// seen twice, the split seeded by the spec.
let private textOptions (spec: Spec) = TextDataOptions(MaxLength = 128, Seed = Seeds.Derive(int64 spec.Seed, "text-split"))

/// Width of the word embeddings of every text model (one value, so the four architectures compare).
let textEmbedding = 32

let private textModel (architecture: Architecture) (vocabulary: int) : TextModel =
    match architecture with
    | TextLstm -> new Attribution.Models.TextLstm(Attribution.Models.TextLstm.Shape(vocabulary, EmbeddingSize = textEmbedding))
    | TextBiLstm -> new Attribution.Models.TextBiLstm(Attribution.Models.TextBiLstm.Shape(vocabulary, EmbeddingSize = textEmbedding))
    | TextCnn -> new Attribution.Models.TextCnn(Attribution.Models.TextCnn.Shape(vocabulary, EmbeddingSize = textEmbedding))
    | TextTransformer -> new Attribution.Models.TextTransformer(Attribution.Models.TextTransformer.Shape(vocabulary, EmbeddingSize = textEmbedding))
    | other -> invalidArg "architecture" $"{Hashing.display other} is not a text model"

/// Tokens embedded per chunk when embedding a whole split (bounds memory).
let private embedChunk = 256

/// Embeddings [n, T, E] (CPU) of token rows, in chunks, without gradients.
let private embed (model: TextModel) (tokens: Tensor) =
    let device = deviceOf model
    use _ = torch.no_grad()
    let parts =
        [| for start in 0L .. int64 embedChunk .. tokens.shape.[0] - 1L do
             use scope = torch.NewDisposeScope()
             let n = min (int64 embedChunk) (tokens.shape.[0] - start)
             yield model.Embed(tokens.narrow(0L, start, n).``to``(device)).cpu().MoveToOuterDisposeScope() |]
    let all = torch.cat(parts, 0L)
    for p in parts do p.Dispose()
    all

/// At most this many real tokens per class enter the embedding covariance (a seeded subset): E x E needs far fewer.
let private covarianceTokens = 200_000L

let private text (spec: Spec) =
    let split =
        match spec.Data.Dataset with
        | TextFile path -> Attribution.Data.TextFile.LoadSplit(path, textOptions spec)
        | _ -> SpamAssassin.LoadSplit(Option.toObj spec.Data.Root, textOptions spec)
    // The split is stored class by class, so a limit takes a seeded random subset, not the first (all-ham) rows.
    let train =
        match spec.Data.TrainLimit with
        | Some n when n < split.Train.Count ->
            use g = new torch.Generator(uint64 (Seeds.Derive(int64 spec.Seed, "text-train-limit")), torch.CPU)
            use order = torch.randperm(int64 split.Train.Count, generator = g)
            split.Train.Select(order.narrow(0L, 0L, int64 n).data<int64>().ToArray())
        | _ -> split.Train
    let test = split.Test
    let length = int64 test.MaxLength
    let asText (model: Network) =
        match model with
        | :? TextModel as t -> t
        | other -> invalidArg "model" $"{other.GetType().Name} is not a text model"
    let embedding (model: Network) = int64 (asText model).EmbeddingSize
    let rows (data: TextDataset) (index: int64[]) = use i = torch.tensor(index) in data.Tokens.index_select(0L, i)
    let lengths (data: TextDataset) (index: int64[]) = use i = torch.tensor(index) in data.Lengths.index_select(0L, i)
    { Modality = Modality.Text
      ClassNames = List.ofSeq test.ClassNames
      TrainCount = train.Count
      TestCount = test.Count
      TrainLabels = train.Labels
      TestLabels = test.Labels
      Boxes = None
      NewModel = fun () -> textModel spec.Model.Architecture train.Vocabulary.Count :> Network
      Train = fun model options device progress -> TextTraining.Train(asText model, train, options, device, progress)
      Accuracy = fun model device -> TextTraining.Accuracy(asText model, test, device)
      Explained = fun model -> new ReshapedModel(model, [| length; embedding model |], [| length; 1L; embedding model |]) :> Network
      Inputs =
        fun model isTrain index ->
            use tokens = rows (if isTrain then train else test) index
            use e = embed (asText model) tokens
            e.reshape(e.shape.[0], length, 1L, e.shape.[2])
      Covariance =
        fun model jitter device ->
            // One E x E covariance per class over the embeddings of real tokens (padding left out), shared by every position.
            let e = embedding model
            let perClass =
                use scope = torch.NewDisposeScope()
                let vectors = embed (asText model) train.Tokens
                let real = TokenScores.PaddingMask(train.Lengths, length, torch.CPU).logical_not().reshape(-1L).nonzero().squeeze(1L)
                let flatVectors = vectors.reshape(-1L, e).index_select(0L, real)
                let flatLabels = train.Labels.unsqueeze(1L).expand(-1L, length).reshape(-1L).index_select(0L, real)
                use g = new torch.Generator(uint64 (Seeds.Derive(int64 spec.Seed, "text-covariance")), torch.CPU)
                let keep = torch.randperm(flatVectors.shape.[0], generator = g).narrow(0L, 0L, min flatVectors.shape.[0] (covarianceTokens * int64 test.ClassNames.Count))
                let perToken = ClassCovariance.Estimate(flatVectors.index_select(0L, keep).reshape(-1L, 1L, 1L, e), flatLabels.index_select(0L, keep), test.ClassNames.Count, jitter, device)
                perToken.Covariances.clone().MoveToOuterDisposeScope()
            // Re-wrapped for inputs [T, 1, E]: the same (jittered) matrices, shared across the T positions.
            let shared = ClassCovariance.FromCovariances(perClass, length, 1L, e, 0.0)
            perClass.Dispose()
            shared
      MaskedPredictions =
        fun model index maps fractions _ seed device ->
            use scope = torch.NewDisposeScope()
            let tokens = rows test index
            let realLengths = lengths test index
            let scores = TokenScores.Sum(maps.reshape(maps.shape.[0], length, -1L), realLengths)
            TokenMasking(Array.ofList fractions).MaskedPredictions(asText model, tokens, realLengths, scores, seed, device).MoveToOuterDisposeScope()
      View = fun index -> TextView(rows test index, lengths test index, test.Vocabulary)
      Speech = None }

// --- audio --------------------------------------------------------------------------------------------

/// Samples per frame of the audio view (25 ms at 16 kHz): the class covariance is frame x frame.
let audioFrame = 400L

/// The synthesised corpus: its settings, seeded by the spec.
let private speechOptions (spec: Spec) =
    Attribution.Data.Audio.SpeechSynthesisOptions(UtterancesPerWord = defaultArg spec.Data.UtterancesPerWord 100, Seed = Seeds.Derive(int64 spec.Seed, "speech"))

let private clipOptions (spec: Spec) = Attribution.Data.Audio.ClipOptions(Seed = Seeds.Derive(int64 spec.Seed, "clips"))

/// Where synthesised utterances are cached (synthesis is the slow part).
let private speechCache () = Path.Combine(Artefacts.root (), "audio-speech")

/// The view of waveforms [N, 1, L] as frames [N, L/w, 1, w].
let framesOf (length: int64) = [| length / audioFrame; 1L; audioFrame |]

let private audio (spec: Spec) =
    let struct (train: Attribution.Data.Audio.AudioDataset, test: Attribution.Data.Audio.AudioDataset) =
        Attribution.Data.Audio.SpeechCommandsSynth.Load(speechCache (), speechOptions spec, clipOptions spec,
                                                        progress = Progress(fun d t m -> Progress.report "synthesise speech" d t m))
    let train =
        match spec.Data.TrainLimit with
        | Some n when n < train.Count ->
            use g = new torch.Generator(uint64 (Seeds.Derive(int64 spec.Seed, "audio-train-limit")), torch.CPU)
            use order = torch.randperm(int64 train.Count, generator = g)
            train.Select(order.narrow(0L, 0L, int64 n).data<int64>().ToArray())
        | _ -> train
    let length = train.Length
    if length % audioFrame <> 0L then invalidArg "spec" $"clips of {length} samples do not split into frames of {audioFrame}"
    let frames = framesOf length
    let asFrames (waveforms: Tensor) = waveforms.reshape(Array.append [| waveforms.shape.[0] |] frames)
    let select (data: Attribution.Data.Audio.AudioDataset) (rows: int64[]) = use index = torch.tensor(rows) in data.Waveforms.index_select(0L, index)
    let explained (model: Network) = new ReshapedModel(model, [| 1L; length |], frames) :> Network
    { Modality = Modality.Audio
      ClassNames = List.ofSeq test.ClassNames
      TrainCount = train.Count
      TestCount = test.Count
      TrainLabels = train.Labels
      TestLabels = test.Labels
      Boxes = None
      NewModel =
        fun () ->
            match spec.Model.Architecture with
            | M5 -> new Attribution.Models.M5(Attribution.Models.M5.Shape(Classes = test.ClassNames.Count)) :> Network
            | other -> invalidArg "architecture" $"{Hashing.display other} is not an audio model"
      Train = fun model options device progress -> Training.Train(model, train.Waveforms, train.Labels, (fun x -> model.forward x), options, device, progress)
      Accuracy =
        fun model device ->
            use scope = torch.NewDisposeScope()
            Training.Logits(model, test.Waveforms, device).argmax(1L).eq(test.Labels).``to``(torch.ScalarType.Float64).mean().item<float>()
      Explained = explained
      Inputs = fun _ isTrain rows -> asFrames (select (if isTrain then train else test) rows)
      Covariance = fun _ jitter device -> ClassCovariance.Estimate(asFrames train.Waveforms, train.Labels, train.ClassNames.Count, jitter, device)
      MaskedPredictions =
        fun model rows maps fractions maskValue seed device ->
            use inputs = asFrames (select test rows)
            Attribution.Metrics.NegativePerturbation(Array.ofList fractions, maskValue).MaskedPredictions(explained model, inputs, maps, seed, device)
      View = fun rows -> AudioView(select test rows, test.SampleRate)
      Speech = Some(train, test) }

// --- every modality -------------------------------------------------------------------------------------

/// Loads the spec's dataset.
let load (spec: Spec) : Domain =
    match modalityOf spec.Data.Dataset with
    | Modality.Image | Modality.Tabular -> images spec
    | Modality.Text -> text spec
    | Modality.Audio -> audio spec

/// The hash of the dataset's content and of everything that shapes it (placement, split), for the plan.
let dataHash (spec: Spec) =
    match spec.Data.Dataset with
    | FashionMnist | FashionCanvas ->
        let files = FashionMnist.ContentHash(Option.toObj spec.Data.Root, true) + FashionMnist.ContentHash(Option.toObj spec.Data.Root, false)
        match spec.Data.Dataset with
        | FashionCanvas -> Hashing.hash [ files; "canvas"; Hashing.canonical (CanvasOptions()); string spec.Seed ]
        | _ -> files
    | TensorFile path -> Hashing.hash [ "tensors"; Artefacts.contentHash path ]
    | ImageFolder s ->
        let content =
            try ImageFolder.ContentHash(s.Path, Path.Combine(Artefacts.root (), "inputs"))
            with :? IOException | :? UnauthorizedAccessException as e -> raise (Experiments.InputProblem $"{s.Path}: cannot be read ({e.Message})")
        // The content and the transforms, not where the folder lies.
        Hashing.hash [ "images"; content; Hashing.canonical { s with Path = "" } ]
    | TextFile path -> Hashing.hash [ "text-file"; Artefacts.contentHash path; Hashing.canonical (textOptions spec) ]
    | RegisteredDataset name -> Hashing.hash [ "registered-dataset"; name; (DatasetRegistry.find name).ContentKey () ]
    | SpamAssassin ->
        // The package is pinned; its files' names and sizes identify the corpus without reading 6,000 files.
        let root = SpamAssassin.ResolveRoot(Option.toObj spec.Data.Root)
        let listing =
            if Directory.Exists root then
                Directory.GetFiles(root, "*.json", SearchOption.AllDirectories)
                |> Array.map (fun f -> Path.GetRelativePath(root, f) + ":" + string (FileInfo(f).Length))
                |> Array.sort |> String.concat ";"
            else "missing"
        Hashing.hash [ "spam_assassin"; listing; Hashing.canonical (textOptions spec) ]
    | SpeechCommands ->
        // Synthesis is deterministic given its settings and the espeak-ng version (the engine's cache key).
        let options = speechOptions spec
        Hashing.hash [ "speech_commands"; Attribution.Data.Audio.SpeechCommandsSynth.CacheKey(options, Attribution.Data.Audio.Espeak().Version()); Hashing.canonical (clipOptions spec)
                       Hashing.canonical spec.Data.TrainLimit ]
