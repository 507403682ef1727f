namespace Experiments

// Validation of a spec value, wherever it came from: the rules of each parameter (ranges, non-empty lists, unique
// ids, increasing fractions; declared once in Catalogue.fs, which the YAML decoder applies while reading), and the
// rules of composition that need the data and the model (a window no larger than the image, a stage the
// architecture has, a metric defined on the modality). A spec built in F# gets exactly the errors its YAML form
// gets; F# values have no positions (File "<fsharp>", Line 0), and `located` places errors in a YAML tree.

open System

module Validate =

    let private nameOf (cases: (string * 'a) list) (value: 'a) = cases |> List.find (snd >> (=) value) |> fst

    let private error path message found allowed = SpecError.make SpecError.FSharpFile 0 0 path message found allowed

    /// The model against the dataset's modality and shape; options of one dataset given to another; a user's files.
    let private dataAndModelErrors (spec: Spec) =
        let modality = Domain.modalityOf spec.Data.Dataset
        let datasetName = Domain.datasetName spec.Data.Dataset
        let allowed = Domain.architecturesFor modality
        let shape = Domain.imageShape spec.Data.Dataset
        [ if not (Domain.fits modality spec.Model.Architecture) then
              let field = match spec.Model.Architecture with TorchScript _ -> "model.torchscript" | TorchVision _ -> "model.torchvision" | _ -> "model.architecture"
              yield error field $"data {datasetName} needs one of its own architectures (TorchScript models explain image and tabular data, TorchVision models image data)"
                        (Some(Domain.architectureName spec.Model.Architecture)) (allowed |> List.map Domain.architectureName)
          match spec.Data.UtterancesPerWord with
          | Some n when spec.Data.Dataset <> SpeechCommands ->
              yield error "data.utterances_per_word" $"applies to data.dataset speech_commands only, not {datasetName}" (Some(string n)) [ "data.dataset: speech_commands" ]
          | _ -> ()
          // A user's folder or text file: its layout and sizes, or its records, read now (nothing decoded or trained).
          match spec.Data.Dataset with
          | ImageFolder s when IO.Directory.Exists s.Path ->
              try
                  Attribution.Data.ImageFolder.InputShape(s.Path, Domain.imageFolderOptions s) |> ignore
                  match s.Classes with
                  | Some stated ->
                      let folders = Attribution.Data.ImageFolder.ClassNames s.Path |> List.ofSeq
                      let extra, missing = stated |> List.filter (fun c -> not (List.contains c folders)), folders |> List.filter (fun c -> not (List.contains c stated))
                      if not extra.IsEmpty || not missing.IsEmpty then
                          yield error "data.images.classes" $"must name each class folder of {s.Path} once: no folder for {extra}, not named: {missing}" None folders
                  | None -> ()
              with
              | :? IO.InvalidDataException | :? ArgumentException as e -> yield error "data.images" e.Message (Some s.Path) []
          | TextFile path when IO.File.Exists path ->
              try Attribution.Data.TextFile.Load path |> ignore
              with :? IO.InvalidDataException as e -> yield error "data.text" e.Message (Some path) []
          | _ -> ()
          match spec.Data.Dataset, Domain.inputGrid spec.Data.Dataset with
          | TensorFile path, None when IO.File.Exists path ->
              yield error "data.tensors" "the file holds no test_inputs [N, C, H, W] or [N, F] (docs/own-model.md lays out a data file)" (Some path) []
          | _ -> ()
          match spec.Model.Architecture, spec.Model.Weights with
          | TorchScript _, Some weights ->
              yield error "model.weights" "a TorchScript model carries its own weights; give either torchscript or architecture with weights" (Some weights) []
          | _ -> ()
          match spec.Model.Architecture, shape with
          | TorchVision name, Some(c, h, w) when c <> 3 || min h w < 32 ->
              yield error "model.torchvision" $"TorchVision's classifiers take 3-channel images of at least 32 pixels a side; data {datasetName} holds {c}x{h}x{w}" (Some name) []
          | _ -> ()
          match spec.Model.Architecture, shape, spec.Data.Dataset with
          | (FashionCnn | SmallResNet), Some(_, h, w), TensorFile _ when h <> w || h < 16 ->
              yield error "model.architecture" $"the shipped image architectures take square images of at least 16 pixels; data {datasetName} holds {h}x{w}"
                        (Some(Domain.architectureName spec.Model.Architecture)) [ "model.torchscript: your own model" ]
          | _ -> ()
          match spec.Model.Normalise with
          | Some n when modality = Modality.Tabular ->
              match Domain.tabularFeatures spec.Data.Dataset with
              | Some f when n.Mean.Length <> f || n.Std.Length <> f ->
                  yield error "model.normalise.mean" $"one value per feature: data {datasetName} has {f}" (Some(string n.Mean.Length + " values")) []
              | _ -> ()
          | Some _ when modality <> Modality.Image ->
              yield error "model.normalise" $"normalises image channels (or tabular features); data {datasetName} is neither" None []
          | Some n when n.Mean.Length <> n.Std.Length ->
              yield error "model.normalise" $"mean and std need one value per channel each (found {n.Mean.Length} and {n.Std.Length})" None []
          | Some n ->
              match shape with
              | Some(c, _, _) when n.Mean.Length <> c ->
                  yield error "model.normalise.mean" $"one value per channel: data {datasetName} has {c}" (Some(string n.Mean.Length + " values")) []
              | _ -> ()
          | None -> () ]

    /// Sampler rules: the Fisher statistic needs a Gaussian; structures and boxes need images; a rank no larger than
    /// the dimension; a box inside the image.
    let private samplerErrors (spec: Spec) (at: string -> string -> string option -> string list -> SpecError) (facts: MethodFacts) =
        let modality = Domain.modalityOf spec.Data.Dataset
        let datasetName = Domain.datasetName spec.Data.Dataset
        let sampler = facts.Sampling |> Option.map _.Sampler
        [ match sampler |> Option.bind SamplerRegistry.facts with
          | Some registered ->
              let name = match sampler with Some(RegisteredSampler r) -> r.Entry | _ -> ""
              if facts.DividesByOutput && not registered.Gaussian then
                  yield at "sampler" "the Fisher statistic (C grad f).grad f / f needs a Gaussian sampler, which has a covariance C" (Some name) [ "isotropic_gaussian"; "covariance_gaussian" ]
              if registered.ImagesOnly && modality <> Modality.Image then
                  yield at "sampler" $"{name} works on image pixels; data.dataset {datasetName} is not an image dataset" (Some name) []
          | None -> ()
          match sampler with
          | Some(BernoulliSuppression _ | EpsilonSphere _ as s) when facts.DividesByOutput ->
              let kind = match s with BernoulliSuppression _ -> "bernoulli_suppression" | _ -> "epsilon_sphere"
              yield at "sampler" "the Fisher statistic (C grad f).grad f / f needs a Gaussian sampler, which has a covariance C" (Some kind) [ "isotropic_gaussian"; "covariance_gaussian" ]
          | _ -> ()
          match sampler with
          | Some(CovarianceGaussian c) when c.Structure <> SharedAcrossChannels && modality <> Modality.Image && modality <> Modality.Tabular ->
              yield at "sampler" $"data.dataset {datasetName} shares one covariance across positions or frames; other structures are for images"
                       (Some(nameOf Vocabulary.Names.layouts c.Structure)) [ "shared_across_channels" ]
          | Some(CovarianceGaussian c) when c.Structure = LowRank ->
              let dimension = match Domain.inputGrid spec.Data.Dataset with Some(_, h, w) -> h * w | None -> Int32.MaxValue
              if c.Rank > dimension then
                  yield at "sampler.rank" $"at most the dimension of the inputs ({dimension} pixels of data.dataset {datasetName})" (Some(string c.Rank)) []
          | Some(ConditionalGaussian _) when modality <> Modality.Image && modality <> Modality.Tabular ->
              yield at "sampler" $"conditional_gaussian conditions on image pixels or tabular features; data.dataset {datasetName} is neither" (Some "conditional_gaussian") []
          | Some(ConditionalGaussian c) ->
              // A tabular row is a 1 x F grid: the box [0, first, 1, count] is a run of features.
              match Domain.inputGrid spec.Data.Dataset, c.Box with
              | Some(_, h, w), [ top; left; height; width ] when top + height > h || left + width > w ->
                  yield at "sampler" $"the box must lie inside the {h}x{w} images of data {datasetName} (top + height at most {h}, left + width at most {w})"
                           (Some(sprintf "[%d, %d, %d, %d]" top left height width)) []
              | _ -> ()
          | _ -> () ]

    let private modalityName (m: Modality) = match m with Modality.Image -> "image" | Modality.Text -> "text" | Modality.Audio -> "audio" | Modality.Tabular -> "tabular"

    /// Method rules, read from each method's facts: modality, stages, invertibility, ReLUs, sizes no larger than the image.
    let private methodErrors (spec: Spec) =
        let modality = Domain.modalityOf spec.Data.Dataset
        let datasetName = Domain.datasetName spec.Data.Dataset
        let architectureName = Domain.architectureName
        spec.Methods
        |> List.indexed
        |> List.collect (fun (i, m) ->
            let at key message found allowed = error $"methods[{i}].{key}" message found allowed
            let facts = MethodRegistry.facts m.Kind
            let name = Catalogue.methodName m.Kind
            let misfit = not (List.contains modality facts.Modalities)
            [ yield! samplerErrors spec at facts
              if misfit then
                  if facts.Modalities = [ Modality.Image ] then
                      yield at "method" $"this method works on image pixels; data.dataset {datasetName} is not an image dataset" (Some name) []
                  else
                      let defined = facts.Modalities |> List.map modalityName |> String.concat ", "
                      yield at "method" $"this method is defined on {defined} inputs; data.dataset {datasetName} holds {modalityName modality}" (Some name) []
              match facts.Stage with
              | Some stage when not misfit && not (List.contains stage (Domain.stagesOf spec.Model.Architecture spec.Data.Dataset)) ->
                  yield at "stage" $"model {architectureName spec.Model.Architecture} has no stage '{stage}'" (Some stage) (Domain.shownStagesOf spec.Model.Architecture spec.Data.Dataset)
              | Some stage when not misfit ->
                  match Domain.stageProblem spec.Model.Architecture stage spec.Data.Dataset with
                  | Some problem -> yield at "stage" problem (Some stage) []
                  | None -> ()
              | _ -> ()
              if facts.InvertsStages && not (Domain.invertibleStages spec.Model.Architecture) then
                  yield at "method" $"{name} inverts the model stage by stage, which model.architecture {architectureName spec.Model.Architecture} does not offer" (Some name) [ "model.architecture: fashion_cnn" ]
              match Domain.inputGrid spec.Data.Dataset with
              | Some(_, h, w) when modality = Modality.Image ->
                  for key, value in facts.PixelSizes do
                      if value > min h w then yield at key $"at most the shorter side of the {h}x{w} images of data {datasetName}" (Some(string value)) []
              | Some _ when modality = Modality.Tabular ->
                  for key, value in facts.PixelSizes do
                      if value <> 1 then yield at key $"1 on tabular data (one feature at a time): data {datasetName} holds feature vectors" (Some(string value)) [ "1" ]
              | _ -> ()
              if facts.ReplacesRelus && not (Domain.hasRectifiers spec.Model.Architecture spec.Data.Dataset) then
                  yield at "method" $"this method replaces the model's ReLUs; model {architectureName spec.Model.Architecture} has none to replace (a registered network offers them by implementing IRectifiedModel)"
                           (Some name) (Vocabulary.Names.architectures |> List.filter (fun (_, a) -> Domain.hasRectifiers a spec.Data.Dataset) |> List.map (fst >> sprintf "model.architecture: %s")) ])

    /// Metric rules: the data a metric needs, and its modality.
    let private metricErrors (spec: Spec) =
        let modality = Domain.modalityOf spec.Data.Dataset
        let datasetName = Domain.datasetName spec.Data.Dataset
        spec.Metrics
        |> List.indexed
        |> List.collect (fun (i, m) ->
            let at message allowed = error $"metrics[{i}].metric" message (Some(Catalogue.metricName m)) allowed
            let facts = MetricRegistry.facts m
            let name = Catalogue.metricName m
            [ match m, spec.Data.Dataset with
              | _, d when facts.NeedsBoxes && not (Domain.hasBoxes d) ->
                  yield at $"{name} needs ground-truth boxes, which only data.dataset fashion_canvas or a data file with test_boxes has" [ "data.dataset: fashion_canvas"; "data.tensors: a file with test_boxes" ]
              | _, d when not facts.Datasets.IsEmpty && not (List.contains d facts.Datasets) ->
                  let needed = facts.Datasets |> List.map (fun k -> "data.dataset: " + Domain.datasetName k)
                  let what = match m with TwoWord _ -> "spoken words" | _ -> "its own data"
                  let which = facts.Datasets |> List.map (fun k -> "data.dataset " + Domain.datasetName k) |> String.concat " or "
                  yield at $"{name} needs {what}, which only {which} has" needed
              | _ when not (List.contains modality facts.Modalities) ->
                  let fitting = MetricRegistry.all () |> List.filter (fun e -> e.Variant.Default |> Option.forall (fun d -> List.contains modality (e.Facts d).Modalities)) |> List.map _.Name
                  yield at $"this metric is not defined on {modalityName modality} inputs (data.dataset {datasetName})" fitting
              | ParameterRandomisation _, _ when not (Domain.layered spec.Model.Architecture) ->
                  yield at $"parameter_randomisation re-initialises the model stage by stage, which {Domain.architectureName spec.Model.Architecture} cannot be cut into" []
              | InsertionDeletion(pixels, _), _ when modality = Modality.Image ->
                  match Domain.imageShape spec.Data.Dataset with
                  | Some(_, h, w) when pixels > h * w ->
                      yield error $"metrics[{i}].pixels_per_step" $"at most the {h * w} pixels of the images of data {datasetName}" (Some(string pixels)) []
                  | _ -> ()
              | _ -> () ])

    /// A class covariance needs at least two training inputs of every class; a train_limit below two per class
    /// cannot give them (the exact counts are checked when the data is loaded).
    let private covarianceErrors (spec: Spec) =
        let needsCovariance = spec.Methods |> List.exists (fun m -> Plan.usesClassCovariance m.Kind)
        match spec.Data.TrainLimit, Domain.classCount spec.Data.Dataset with
        | Some limit, Some classes when needsCovariance && limit < 2 * classes ->
            [ error "data.train_limit" $"a class covariance needs at least 2 training inputs of each of the {classes} classes, so at least {2 * classes}" (Some(string limit)) [] ]
        | _ -> []

    /// The spec's methods, with their indices, that read the network's inside (a stage, its ReLUs, its stages inverted).
    let private readingInside (spec: Spec) =
        spec.Methods |> List.indexed |> List.filter (fun (_, m) -> MethodFacts.readsInside (MethodRegistry.facts m.Kind))

    /// Indexed methods as an error names them: `methods[1] (id), ...`.
    let private namedMethods (indexed: (int * MethodSpec) list) =
        indexed |> List.map (fun (i, m) -> $"methods[{i}] ({m.Id})") |> String.concat ", "

    /// Methods that divide by f need it positive: the softmax probability, never the logit (explain.output, and the
    /// Taylor surrogates taylor_fidelity explains as logits).
    let private outputErrors (spec: Spec) =
        let dividing = spec.Methods |> List.indexed |> List.filter (fun (_, m) -> Plan.dividesByOutput m.Kind)
        let named = namedMethods dividing
        [ if not dividing.IsEmpty && spec.Explain.Output = Logit then
              yield error "explain.output" $"{named} divide by f, which must be positive: explain the probability" (Some "logit") [ "probability" ]
          // taylor_fidelity runs each method on each input's Taylor polynomial, a function without stages or ReLUs.
          let structural = readingInside spec
          for i, m in List.indexed spec.Metrics do
              match m with
              | TaylorFidelity _ when not dividing.IsEmpty ->
                  yield error $"metrics[{i}].metric" $"taylor_fidelity explains Taylor polynomials as logits, which {named} cannot divide by; assess those methods in another spec" (Some "taylor_fidelity") []
              | TaylorFidelity _ when not structural.IsEmpty ->
                  yield error $"metrics[{i}].metric" $"taylor_fidelity explains each input's Taylor polynomial, which has no stages or ReLUs for {namedMethods structural} to use; assess those methods in another spec" (Some "taylor_fidelity") []
              | _ -> () ]

    /// bf16 explains through a bfloat16 copy seen only at its input and output: methods that read the network's
    /// stages, swap its ReLUs or invert it would reach the float32 network instead, so they are refused.
    let private precisionErrors (spec: Spec) =
        let structural = readingInside spec
        [ if spec.Explain.Precision = Bf16 && not structural.IsEmpty then
              yield error "explain.precision" $"bf16 runs a bfloat16 copy of the network seen at its input and output only; {namedMethods structural} read its stages or rules: explain them in fp32 or tf32, or in another spec" (Some "bf16") [ "fp32"; "tf32" ] ]

    /// The rules that join sections: the model, methods and metrics against the data.
    let composition (spec: Spec) : SpecError list =
        dataAndModelErrors spec @ methodErrors spec @ metricErrors spec @ covarianceErrors spec @ outputErrors spec @ precisionErrors spec

    /// Every broken rule of a spec, all at once; [] when the spec is valid.
    let spec (s: Spec) : SpecError list =
        let parameters = Catalogue.issues s |> List.map (fun i -> error i.Path i.Message i.Found [])
        parameters @ composition s

    /// Files and folders the spec names that are not there (relative paths are from the working folder): checked
    /// before any work starts, apart from `spec` because they depend on the machine, not on the spec alone.
    let files (s: Spec) : SpecError list =
        let from = $"relative paths are from {IO.Directory.GetCurrentDirectory()}"
        [ match s.Model.Weights with
          | Some path when not (IO.File.Exists path) -> yield error "model.weights" $"no such file ({from})" (Some path) []
          | _ -> ()
          match s.Data.Dataset with
          | TensorFile path when not (IO.File.Exists path) -> yield error "data.tensors" $"no such file ({from})" (Some path) []
          | ImageFolder f when not (IO.Directory.Exists f.Path) -> yield error "data.images" $"no such folder ({from})" (Some f.Path) []
          | TextFile path when not (IO.File.Exists path) -> yield error "data.text" $"no such file ({from})" (Some path) []
          | _ -> ()
          match s.Model.Architecture with
          | TorchScript path when not (IO.File.Exists path) -> yield error "model.torchscript" $"no such file ({from})" (Some path) []
          | _ -> ()
          match s.Data.Root with
          | Some root when not (IO.Directory.Exists root) -> yield error "data.root" $"no such folder ({from})" (Some root) []
          | _ -> () ]

    /// The spec itself when valid.
    let check (s: Spec) : Result<Spec, SpecError list> =
        match spec s with
        | [] -> Ok s
        | errors -> Error errors

    /// Errors found on a value, placed at their fields in the YAML tree it was read from.
    let located (file: string) (root: Node) (errors: SpecError list) =
        errors
        |> List.map (fun e ->
            let p = FieldPath.locate root (FieldPath.segments e.Path)
            { e with File = file; Line = p.Line; Column = p.Column })

    /// Reads and validates one spec document of YAML text: every error, located in `file`, or the spec and its tree.
    let document (file: string) (text: string) : Result<Spec * Node, SpecError list> =
        Yaml.parseTree file text
        |> Result.bind (fun node ->
            // The decoder keeps a value that breaks a rule, so composition errors come out with the others.
            let decoded = Catalogue.decodeSpec { File = file; Path = "" } node
            let compositionErrors = decoded.Value |> Option.map (composition >> located file node) |> Option.defaultValue []
            match decoded.Value, decoded.Errors @ compositionErrors with
            | Some s, [] -> Ok(s, node)
            | _, errors -> Error errors)

    /// `document` without the tree.
    let text (file: string) (yaml: string) : Result<Spec, SpecError list> = document file yaml |> Result.map fst
