namespace Experiments

// The catalogue of specs: the metrics, the sections (data, model, explain, report, full, the top level) and the whole
// spec's codec, each parameter declared once with its yaml name, type, default, range and doc. Methods are entries of
// MethodRegistry (Methods/); shared parameters, names and samplers are in Vocabulary.fs. The YAML decoder, the F#
// builders, validation of F# values, the YAML printer and `list` all read these declarations.

open System
open System.Text.RegularExpressions
open Experiments.Vocabulary

module Catalogue =
    let isIdent = Vocabulary.isIdent
    let samplers () = Vocabulary.samplers ()
    let samplerNames () = Vocabulary.samplerNames ()

    // --- methods: the registry's entries -------------------------------------------------------

    /// The method variants (parameters, defaults, docs), shipped and registered.
    let methods () = MethodRegistry.all () |> List.map _.Variant

    /// The yaml names of every method.
    let methodNames () = MethodRegistry.names ()

    /// The yaml name of a method kind.
    let methodName (k: MethodKind) = MethodRegistry.nameOf k

    let methodSpec: Param<MethodSpec> =
        let idCheck (m: MethodSpec) =
            match identCheck m.Id with
            | Some msg -> [ { Path = "id"; Message = msg; Found = Some m.Id } ]
            | None -> []
        { Info = { Name = "method"; Type = "method"; Default = None; Allowed = String.Join(" | ", MethodRegistry.names ()); Doc = "an attribution method" }
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
                    (Variant.decoder "method" "method" [ "id" ] (methods ()) ctx n)
                    id
          Encode = fun m -> Out.Map(("id", Out.Str m.Id) :: Variant.encode "method" (methods ()) m.Kind)
          Check = idCheck
          Deep = fun m -> Variant.issues (methods ()) m.Kind }


    // --- metrics: the registry's entries -------------------------------------------------------

    /// The metric variants (parameters, defaults, docs), shipped and registered.
    let metrics () = MetricRegistry.all () |> List.map _.Variant

    /// The yaml names of every metric.
    let metricNames () = MetricRegistry.names ()

    /// The yaml name of a metric.
    let metricName (m: MetricSpec) = MetricRegistry.nameOf m

    let metricSpec: Param<MetricSpec> =
        { Info = { Name = "metric"; Type = "metric"; Default = None; Allowed = String.Join(" | ", MetricRegistry.names ()); Doc = "an evaluation metric" }
          Default = None
          Decode = fun ctx n -> Variant.decoder "metric" "metric" [] (metrics ()) ctx n |> Decoded.map snd
          Encode = fun m -> Variant.encode "metric" (metrics ()) m |> Out.Map
          Check = fun _ -> []
          Deep = fun m -> Variant.issues (metrics ()) m }

    // --- sections --------------------------------------------------------------------------------

    /// A name among the shipped ones and those registered from a user's code (read when the spec is decoded, so that
    /// an entry registered after this library loaded is known).
    let private shippedOrRegistered name noun doc (shipped: (string * 'a) list) (registered: unit -> string list) (wrap: string -> 'a) (unwrap: 'a -> string option) =
        let cases () = shipped @ [ for n in registered () -> n, wrap n ]
        Param.make name noun (String.Join(" | ", shipped |> List.map fst) + " | a registered name") doc None
            (fun ctx n -> Decode.choice noun (cases ()) ctx n)
            (fun v -> match unwrap v with Some n -> Out.Plain n | None -> Out.Plain(shipped |> List.find (snd >> (=) v) |> fst))
            (fun _ -> None)

    module Data =
        let dataset =
            shippedOrRegistered "dataset" "dataset" "a shipped dataset, or one registered from your code (DatasetRegistry)" Names.datasets DatasetRegistry.names
                RegisteredDataset (function RegisteredDataset n -> Some n | _ -> None)

        /// A user's data file (TensorFile): its path.
        let tensors =
            Param.make "tensors" "path" "a .safetensors file" "a file of your own images and labels: train_inputs, train_labels, test_inputs, test_labels [, test_boxes] (docs/own-model.md)" None
                (Decode.string >> fun d -> fun n -> d n |> Decoded.map TensorFile)
                (function TensorFile p -> Out.Str p | other -> Out.Str(string other))
                (function
                 | TensorFile p -> pathProblem p |> Option.orElse (if p.EndsWith(".safetensors", StringComparison.Ordinal) then None else Some "must be a .safetensors file")
                 | _ -> None)

        /// Sizes of torchvision's Resize and CenterCrop: one number or [height, width], each in [1, 8192].
        let private sides name doc =
            let side = Param.int name doc None 1 (Some 8192)
            Param.optional (
                Param.make name "size" "n | [height, width]" doc None
                    (fun ctx n -> match n with Node.Scalar _ -> side.Decode ctx n |> Decoded.map List.singleton | _ -> Decode.list side.Decode ctx n)
                    (function [ one ] -> Out.Plain(string one) | many -> Out.Plain("[" + String.Join(", ", many) + "]"))
                    (fun sizes -> if sizes.Length = 1 || sizes.Length = 2 then None else Some "one number or [height, width]"))

        let private imageFolderFields =
            fields {
                let! path = Fields.field (fun (s: ImageFolderSpec) -> s.Path) (Param.string "path" "the folder: a sub-folder per class (or train/ and test/ each so)" None (fun p -> pathProblem p))
                and! resize = Fields.field (fun (s: ImageFolderSpec) -> s.Resize) (sides "resize" "torchvision's Resize: the shorter side, or [height, width]; bilinear with antialiasing")
                and! crop = Fields.field (fun (s: ImageFolderSpec) -> s.CenterCrop) (sides "center_crop" "torchvision's CenterCrop, after the resize: a square side, or [height, width]")
                and! grayscale = Fields.field (fun (s: ImageFolderSpec) -> s.Grayscale) (Param.choice "channels" "channels" "rgb (3 channels, R, G, B) or grayscale (1, ITU-R 601-2 luma)" (Some false) [ "rgb", false; "grayscale", true ])
                and! classes =
                    Fields.field (fun (s: ImageFolderSpec) -> s.Classes)
                        (Param.optional (Param.list "classes" "the class folders in the model's output order (default: sorted by name, as torchvision's ImageFolder)" None
                                            (Param.string "class" "a class folder's name" None nonEmpty) "folder names"
                                            (fun names -> if List.distinct names = names then [] else [ { Path = ""; Message = "each class once"; Found = None } ])))
                return { Path = path; Resize = resize; CenterCrop = crop; Grayscale = grayscale; Classes = classes }
            }

        /// A user's image folder: its path alone, or a mapping with the transforms.
        let images =
            let section = Fields.section "images" "a folder of your own images (ImageFolder layout) and its transforms" imageFolderFields
            let ofKind = function ImageFolder s -> s | other -> invalidArg "dataset" $"not an image folder: %A{other}"
            Param.make "images" "path | mapping" "a folder, or { path, resize, center_crop, channels }"
                "a folder of your own images: a sub-folder per class, PNG or JPEG (docs/own-model.md)" None
                (fun ctx n ->
                    match n with
                    | Node.Scalar _ -> Decode.string ctx n |> Decoded.map (fun p -> ImageFolder { Path = p; Resize = None; CenterCrop = None; Grayscale = false; Classes = None })
                    | _ -> section.Decode ctx n |> Decoded.map ImageFolder)
                (fun d ->
                    let s = ofKind d
                    if s.Resize.IsNone && s.CenterCrop.IsNone && not s.Grayscale && s.Classes.IsNone then Out.Str s.Path else section.Encode s)
                (function ImageFolder s -> pathProblem s.Path | _ -> None)

        /// A user's labelled texts.
        let text =
            Param.make "text" "path" "a .jsonl or .csv file" "your own labelled texts: JSON Lines {text, label} or CSV with columns text and label (docs/own-model.md)" None
                (Decode.string >> fun d -> fun n -> d n |> Decoded.map TextFile)
                (function TextFile p -> Out.Str p | other -> Out.Str(string other))
                (function
                 | TextFile p ->
                     pathProblem p |> Option.orElse (if [ ".jsonl"; ".csv" ] |> List.exists (fun e -> p.EndsWith(e, StringComparison.OrdinalIgnoreCase)) then None else Some "must be a .jsonl or .csv file")
                 | _ -> None)

        /// Where the data come from: a shipped dataset, or a file or folder of the user's.
        let source =
            Fields.oneOf (fun (d: DataSpec) -> d.Dataset)
                [ dataset, (function TensorFile _ | ImageFolder _ | TextFile _ -> false | _ -> true)
                  tensors, (function TensorFile _ -> true | _ -> false)
                  images, (function ImageFolder _ -> true | _ -> false)
                  text, (function TextFile _ -> true | _ -> false) ]
        let root = Param.optional (Param.string "root" "directory of the dataset files" None nonEmpty)
        let trainLimit = Param.optional (Param.int "train_limit" "use only the first n training examples" None 1 (Some 10_000_000))
        let explain = Param.int "explain" "number of test inputs to explain" (Some 1000) 1 (Some 10_000_000)
        let utterances = Param.optional (Param.int "utterances_per_word" "speech_commands only: utterances synthesised per word (default 100)" None 4 (Some 1000))

        let fields =
            fields {
                let! dataset = source
                and! root = Fields.field (fun (d: DataSpec) -> d.Root) root
                and! trainLimit = Fields.field (fun (d: DataSpec) -> d.TrainLimit) trainLimit
                and! explain = Fields.field (fun (d: DataSpec) -> d.Explain) explain
                and! utterances = Fields.field (fun (d: DataSpec) -> d.UtterancesPerWord) utterances
                return { Dataset = dataset; Root = root; TrainLimit = trainLimit; Explain = explain; UtterancesPerWord = utterances }
            }

    module Model =
        let architecture =
            shippedOrRegistered "architecture" "architecture" "a shipped network, or one registered from your code (ModelRegistry); trained by the run or loaded from weights" Names.architectures ModelRegistry.names
                RegisteredModel (function RegisteredModel n -> Some n | _ -> None)

        /// A user's TorchScript model: its path.
        let torchscript =
            Param.make "torchscript" "path" "a TorchScript file" "a model of your own exported from PyTorch (torch.jit.trace or torch.jit.script, then save), explained as it is" None
                (Decode.string >> fun d -> fun n -> d n |> Decoded.map TorchScript)
                (function TorchScript p -> Out.Str p | other -> Out.Str(string other))
                (function TorchScript p -> pathProblem p | _ -> None)

        /// A TorchVision architecture by its PyTorch name.
        let torchvision =
            Param.choice "torchvision" "architecture" "a TorchVision image classifier (PyTorch's names), with model.weights of yours or trained by the run" None
                [ for name in Attribution.Models.TorchVisionModels.Names -> name, TorchVision name ]

        /// Which network: a shipped architecture, or a model of the user's.
        let source =
            Fields.oneOf (fun (m: ModelSpec) -> m.Architecture)
                [ architecture, (function TorchScript _ | TorchVision _ -> false | _ -> true)
                  torchscript, (function TorchScript _ -> true | _ -> false)
                  torchvision, (function TorchVision _ -> true | _ -> false) ]

        let private channelValues name doc (positive: bool) =
            let item = Param.make name "float" (if positive then "(0, 1000]" else "[-1000, 1000]") doc None Decode.float Out.float (fun v ->
                           if positive then (if v > 0.0 && v <= Bounds.Magnitude then None else Some "must be in (0, 1000]")
                           elif abs v <= Bounds.Magnitude then None else Some "must be in [-1000, 1000]")
            Param.list name doc None item "one value per channel" (fun xs -> if xs.IsEmpty then [ { Path = ""; Message = "at least one channel"; Found = None } ] else [])

        let normalise =
            Param.optional (
                Fields.section "normalise" "the model's input normalisation (x - mean) / std per channel, applied inside the explained function (attributions stay in pixel space)"
                    (fields {
                        let! mean = Fields.field (fun (n: Normalisation) -> n.Mean) (channelValues "mean" "per-channel mean" false)
                        and! std = Fields.field (fun (n: Normalisation) -> n.Std) (channelValues "std" "per-channel standard deviation" true)
                        return { Mean = mean; Std = std }
                    }))
        let epochs = Param.int "epochs" "training epochs (0: random initialisation, untrained, for benchmarks)" (Some 8) 0 (Some Bounds.Epochs)
        let batchSize = Param.int "batch_size" "training batch size" (Some 128) 1 (Some Bounds.BatchSize)
        let learningRate = Param.float "learning_rate" "Adam learning rate" (Some 0.001) true 10.0

        let weights =
            Param.optional (
                Param.string "weights" "a state dict to load instead of training: .safetensors or PyTorch's .pth (torch.save(model.state_dict()))" None (fun s ->
                    if [ ".safetensors"; ".pth"; ".pt" ] |> List.exists (fun e -> s.EndsWith(e, StringComparison.OrdinalIgnoreCase)) then None
                    else Some "must be a .safetensors or .pth file")
            )

        let fields =
            fields {
                let! architecture = source
                and! epochs = Fields.field (fun (m: ModelSpec) -> m.Epochs) epochs
                and! batchSize = Fields.field (fun (m: ModelSpec) -> m.BatchSize) batchSize
                and! learningRate = Fields.field (fun (m: ModelSpec) -> m.LearningRate) learningRate
                and! weights = Fields.field (fun (m: ModelSpec) -> m.Weights) weights
                and! normalise = Fields.field (fun (m: ModelSpec) -> m.Normalise) normalise
                return { Architecture = architecture; Epochs = epochs; BatchSize = batchSize; LearningRate = learningRate; Weights = weights; Normalise = normalise }
            }

    module Explain =
        let private target = Param.choice "target" "target" "a target" None Names.targets

        let targets =
            Param.list "targets" "which class each map explains" (Some [ GroundTruth; Predicted ]) target "non-empty, no duplicates" (fun ts ->
                (if ts.IsEmpty then [ { Path = ""; Message = "at least one target is required"; Found = None } ] else [])
                @ duplicates "target" (fun t -> Names.targets |> List.find (snd >> (=) t) |> fst) "" ts)

        let output = Param.choice "output" "output function" "the differentiated output" (Some Probability) Names.outputs
        let batchSize = Param.int "batch_size" "inputs per forward/backward chunk" (Some 256) 1 (Some Bounds.BatchSize)
        let commonNoise =
            Param.bool "common_noise" "every method draws an input's noise from one seed of the spec's seed and the input, not of the method's parameters (common random numbers: methods compared on the same draws)" (Some false)

        let precision =
            Param.choice "precision" "precision" "the network's arithmetic in the attribution steps: fp32; tf32 (CUDA's tensor cores for products and convolutions; the CPU is unchanged); bf16 (a bfloat16 copy of the network, for methods that need only its outputs and input gradients). Metrics use fp32" (Some Fp32) Names.precisions

        let fields =
            fields {
                let! targets = Fields.field (fun (e: ExplainSpec) -> e.Targets) targets
                and! output = Fields.field (fun (e: ExplainSpec) -> e.Output) output
                and! batchSize = Fields.field (fun (e: ExplainSpec) -> e.BatchSize) batchSize
                and! commonNoise = Fields.field (fun (e: ExplainSpec) -> e.CommonNoise) commonNoise
                and! precision = Fields.field (fun (e: ExplainSpec) -> e.Precision) precision
                return { Targets = targets; Output = output; BatchSize = batchSize; CommonNoise = commonNoise; Precision = precision }
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
            Param.list "metrics" "the evaluation metrics" (Some [ Variant.dflt MetricEntries.NegativePerturbation.variant; RankAgreement ]) metricSpec "a list of metrics" (fun _ -> [])

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
