/// Images (and tabular rows, held as one-row images) as the runner sees them: the shipped image data sets, a user's
/// data file, image folder or registered loader, and the spec's model over them (its normalisation, its modules by path).
module Experiments.ImageDomain

open System
open System.Collections.Generic
open System.IO
open TorchSharp
open Attribution.Data
open Attribution.Models
open Attribution.Runtime
open Attribution.Sampling
open Experiments
open Experiments.Domain

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
    match Attribution.Models.StateDict.ReadShapes(weights).TryGetValue(Attribution.Models.TorchVisionModels.ClassifierWeight architecture) with
    | true, shape when shape.Length = 2 -> int shape.[0]
    | _ -> 0

/// The image domain of training and test sets (and the test inputs' boxes, when known): what the runner needs of them
/// and of the spec's model, whose input normalisation (if any) is part of the explained function.
let private imageDomain (spec: Spec) (train: ImageDataset) (test: ImageDataset) (boxes: IReadOnlyList<IRegion> option) (features: string list option) =
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
        fun model rows maps fractions maskValue tieBreak device ->
            use inputs = select test rows
            Attribution.Metrics.NegativePerturbation(Array.ofList fractions, maskValue).MaskedPredictions(view model, inputs, maps, tieBreak, device)
      // the engine masks every element of an image (or every feature of a row)
      MaskedSlots = inputShape |> Array.fold (*) 1L
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

/// The hash of an image folder's content and of the transforms that shape its tensors, not of where the folder lies:
/// the data's part of the plan's keys, and the name of its decoded copy.
let folderHash (s: ImageFolderSpec) =
    let content =
        try ImageFolder.ContentHash(s.Path, Path.Combine(Artefacts.root (), "inputs"))
        with :? IOException | :? UnauthorizedAccessException as e -> raise (Experiments.InputProblem $"{s.Path}: cannot be read ({e.Message})")
    Hashing.hash [ "images"; content; Hashing.canonical { s with Path = "" } ]

/// The cache's folder of decoded image folders (DecodedImageFolder).
let decodedRoot () = Path.Combine(Artefacts.root (), "decoded-images")

/// Where an image folder's decoded images are kept: beside the cache's artefacts, one folder per content and
/// transforms (named by the data hash), shared by every run and shard that reads the same images.
let decodedFolder (s: ImageFolderSpec) = Path.Combine(decodedRoot (), folderHash s)

let load (spec: Spec) =
    let items train limit = FashionMnist.Load(Option.toObj spec.Data.Root, train, limit)
    match spec.Data.Dataset with
    | FashionCanvas ->
        let canvas train limit unit =
            let source = items train limit
            Progress.say $"data: placing {source.Count} items on {CanvasOptions().Size}px canvases ({unit})"
            LocalisationCanvas.Build(source, source.Count, Seeds.Derive(int64 spec.Seed, $"canvas/{unit}"))
        let train = canvas true (Option.toNullable spec.Data.TrainLimit) "train"
        let test = canvas false (Nullable()) "test"
        imageDomain spec train.Images test.Images (Some(test.Boxes |> Seq.map (fun b -> b :> IRegion) |> Array.ofSeq :> IReadOnlyList<IRegion>)) None
    | TensorFile path ->
        let data = TensorFile.Load path
        let train =
            match spec.Data.TrainLimit with
            | Some n when n < data.Train.Count -> data.Train.Take n
            | _ -> data.Train
        imageDomain spec train data.Test (data.Boxes |> Option.ofObj |> Option.map (fun b -> b :> IReadOnlyList<IRegion>))
            (if data.Tabular then Some(List.ofSeq (nonNull data.FeatureNames)) else None)
    | RegisteredDataset name ->
        let entry = DatasetRegistry.find name
        let parts = entry.Load spec.Seed
        let train =
            match spec.Data.TrainLimit with
            | Some n when n < parts.Train.Count -> parts.Train.Take n
            | _ -> parts.Train
        imageDomain spec train parts.Test (parts.Boxes |> Option.map (fun b -> b :> IReadOnlyList<IRegion>))
            (if entry.Modality = Modality.Tabular then Some(parts.Features |> Option.defaultWith (fun () -> [ for k in 0 .. int parts.Test.Images.shape.[3] - 1 -> $"feature_{k}" ])) else None)
    | ImageFolder s ->
        let decoded = decodedFolder s
        Progress.say $"data: the images of {s.Path}, decoded in {Path.GetRelativePath(Artefacts.root (), decoded)} of the cache and mapped from there"
        let data = DecodedImageFolder.Load(s.Path, imageFolderOptions s, decoded, Action<string>(Progress.say))
        if not data.SeparateTest then Progress.say $"data: {s.Path} has no train/ and test/ folders: its images serve as both"
        let relabel = inStatedOrder s
        let train =
            match spec.Data.TrainLimit with
            | Some n when n < data.Train.Count -> relabel (data.Train.Take n)
            | _ -> relabel data.Train
        imageDomain spec train (relabel data.Test) None None
    | _ -> imageDomain spec (items true (Option.toNullable spec.Data.TrainLimit)) (items false (Nullable())) None None
