/// The command line: `run`, `plan`, `validate`, `list`. A bare spec path means `run`; no argument at all
/// runs the embedded quickstart spec.
module Experiments.Cli

open System
open System.IO
open System.Reflection
open Argu
open Experiments

type DeviceArgument =
    | Auto
    | Cpu
    | Cuda

type RunArgs =
    | [<MainCommand>] Specs of spec: string list
    | Device of DeviceArgument
    | Explain of inputs: int
    | Full
    | Output of folder: string
    | Only of name: string
    interface IArgParserTemplate with
        member this.Usage =
            match this with
            | Specs _ -> "experiment specs (YAML); none runs the embedded quickstart."
            | Only _ -> "run only the spec (document) with this name; repeat for several (a file may hold several specs separated by ---)."
            | Device _ -> "override the spec's device (auto = cuda when available)."
            | Explain _ -> "override the number of explained test images."
            | Full -> "run at the paper's scale: the spec's full section (every test input, the whole training set); the run is named NAME-full."
            | Output _ -> "override the folder the run folder is written under."

type SpecArgs =
    | [<MainCommand>] Specs of spec: string list
    | Only of name: string
    interface IArgParserTemplate with
        member this.Usage =
            match this with
            | Specs _ -> "experiment specs (YAML); none means the embedded quickstart."
            | Only _ -> "only the spec (document) with this name; repeat for several."

type BenchArgs =
    | Device of DeviceArgument
    | Epochs of int
    | Inputs of int
    | Samples of int
    interface IArgParserTemplate with
        member this.Usage =
            match this with
            | Device _ -> "device to measure on (default auto)."
            | Epochs _ -> "training epochs (default 8, as the shipped specs)."
            | Inputs _ -> "test images explained per method (default 100)."
            | Samples _ -> "samples (or path steps) per input (default 50)."

type ListArgs =
    | [<Hidden>] Unused
    interface IArgParserTemplate with
        member this.Usage = ""

type Command =
    | [<CliPrefix(CliPrefix.None)>] Run of ParseResults<RunArgs>
    | [<CliPrefix(CliPrefix.None)>] Plan of ParseResults<SpecArgs>
    | [<CliPrefix(CliPrefix.None)>] Validate of ParseResults<SpecArgs>
    | [<CliPrefix(CliPrefix.None)>] List of ParseResults<ListArgs>
    | [<CliPrefix(CliPrefix.None)>] Bench of ParseResults<BenchArgs>
    interface IArgParserTemplate with
        member this.Usage =
            match this with
            | Run _ -> "validate, plan and run experiments; write their run folders."
            | Plan _ -> "print the run plan (steps, content hashes, cache state) without running."
            | Validate _ -> "check specs and report every error with file:line:column."
            | List _ -> "list the methods, samplers and metrics with their parameters and defaults."
            | Bench _ -> "measure training time and accuracy, and each method's throughput (fresh, no cache)."

/// The spec shipped inside the program, run when no spec is named.
let embeddedQuickstart () =
    use stream =
        match Assembly.GetExecutingAssembly().GetManifestResourceStream "quickstart.yaml" with
        | null -> failwith "the embedded quickstart.yaml is missing from this build"
        | s -> s
    use reader = new StreamReader(stream)
    reader.ReadToEnd()

/// (source name, text) of each spec argument; the embedded quickstart when there is none.
/// The specs of a file: YAML documents separated by a line `---` (a file may hold several specs, e.g. one per
/// architecture). Each document keeps its place: the other documents' lines are blanked, so errors keep the file's
/// line numbers. A file without a separator is one document.
let documents (text: string) : string list =
    let lines = text.Replace("\r\n", "\n").Split '\n'
    let separators = lines |> Array.indexed |> Array.filter (fun (_, l) -> l.TrimEnd() = "---") |> Array.map fst
    if separators.Length = 0 then [ text ]
    else
        let bounds = Array.append (Array.append [| -1 |] separators) [| lines.Length |] |> Array.pairwise
        let isContent (l: string) = let t = l.Trim() in t <> "" && not (t.StartsWith "#")
        let docs =
            [ for start, stop in bounds do
                if lines.[start + 1 .. stop - 1] |> Array.exists isContent then
                    yield lines |> Array.mapi (fun i l -> if i > start && i < stop then l else "") |> String.concat "\n" ]
        if docs.IsEmpty then [ text ] else docs

let private sources (paths: string list) =
    match paths with
    | [] -> [ "<embedded quickstart.yaml>", Ok(embeddedQuickstart ()) ]
    | _ ->
        [ for p in paths do
            if File.Exists p then
                for doc in documents (File.ReadAllText p) do yield p, Ok doc
            else yield p, Error $"{p}: no such spec file (the shipped specs are in experiments/)" ]

/// Files a spec names that are not there (checked before any work starts), located at their key's line.
let private missingFiles (name: string) (text: string) (spec: Spec) =
    match spec.Model.Weights with
    | Some path when not (File.Exists path) ->
        let lines = text.Split '\n'
        let line = lines |> Array.tryFindIndex (fun l -> l.TrimStart().StartsWith "weights:") |> Option.map ((+) 1) |> Option.defaultValue 0
        let column = if line > 0 then lines.[line - 1].IndexOf "weights:" + 1 else 0
        [ SpecError.make name line column "model.weights" $"no such file (relative paths are from {Directory.GetCurrentDirectory()})" (Some path) [] ]
    | _ -> []

/// Line and column of `key` in `node` when it is a mapping holding it, else of `node` itself.
let private keyIn (node: YamlDotNet.RepresentationModel.YamlNode) (key: string) =
    let at (n: YamlDotNet.RepresentationModel.YamlNode) = int n.Start.Line, int n.Start.Column
    match node with
    | :? YamlDotNet.RepresentationModel.YamlMappingNode as map when map.Children.ContainsKey(YamlDotNet.RepresentationModel.YamlScalarNode key) ->
        at map.Children.[YamlDotNet.RepresentationModel.YamlScalarNode key]
    | _ -> at node

/// The node of a top-level section of the YAML text.
let private sectionNode (text: string) (section: string) =
    let yaml = YamlDotNet.RepresentationModel.YamlStream()
    yaml.Load(new StringReader(text))
    let root = yaml.Documents.[0].RootNode :?> YamlDotNet.RepresentationModel.YamlMappingNode
    root.Children.[YamlDotNet.RepresentationModel.YamlScalarNode section]

/// Line and column of section[i].key in the YAML text (of section[i] when the key is absent); 0, 0 if unknown.
let private entryPosition (text: string) (section: string) (index: int) (key: string) =
    try keyIn (sectionNode text section :?> YamlDotNet.RepresentationModel.YamlSequenceNode).Children.[index] key
    with _ -> 0, 0

/// Line and column of section.key in the YAML text (of section when the key is absent); 0, 0 if unknown.
let private keyPosition (text: string) (section: string) (key: string) =
    try keyIn (sectionNode text section) key
    with _ -> 0, 0

/// Combinations the engine refuses, reported with the spec's other errors before any work starts: an architecture
/// of another modality than the dataset's; the Fisher statistic without a Gaussian sampler (it divides by f and
/// weighs by the sampler's covariance); pixel-based methods and metrics on text or audio; rule-based methods on a
/// model without ReLUs to replace; EHR without boxes.
let compositionErrors (name: string) (text: string) (spec: Spec) =
    let modality = Domain.modalityOf spec.Data.Dataset
    let datasetName = Catalogue.Names.datasets |> List.find (snd >> (=) spec.Data.Dataset) |> fst
    let architectureName (a: Architecture) = Catalogue.Names.architectures |> List.find (snd >> (=) a) |> fst
    let modelErrors =
        let allowed = Domain.architecturesFor modality
        if List.contains spec.Model.Architecture allowed then []
        else
            let line, column = keyPosition text "model" "architecture"
            [ SpecError.make name line column "model.architecture" $"data.dataset {datasetName} needs one of its own architectures"
                  (Some(architectureName spec.Model.Architecture)) (allowed |> List.map architectureName) ]
    let methodErrors =
        spec.Methods
        |> List.indexed
        |> List.collect (fun (i, m) ->
            let at key message found allowed =
                let line, column = entryPosition text "methods" i key
                SpecError.make name line column $"methods[{i}].{key}" message found allowed
            let fisherSampler =
                match m.Kind with
                | FunctionalInformation p | SampledGradients(p, FisherRatio, _, _) -> Some p.Sampler
                | _ -> None
            [ match fisherSampler with
              | Some (BernoulliSuppression _ | EpsilonSphere _ as s) ->
                  let kind = match s with BernoulliSuppression _ -> "bernoulli_suppression" | _ -> "epsilon_sphere"
                  yield at "sampler" "the Fisher statistic (C grad f).grad f / f needs a Gaussian sampler, which has a covariance C" (Some kind) [ "isotropic_gaussian"; "covariance_gaussian" ]
              | _ -> ()
              match Plan.samplingOf m.Kind |> Option.map _.Sampler with
              | Some(CovarianceGaussian c) when c.Structure <> SharedAcrossChannels && modality <> Domain.Image ->
                  yield at "sampler" $"data.dataset {datasetName} shares one covariance across positions or frames; other structures are for images" (Some(Catalogue.Names.layouts |> List.find (snd >> (=) c.Structure) |> fst)) [ "shared_across_channels" ]
              | Some(ConditionalGaussian _) when modality <> Domain.Image ->
                  yield at "sampler" $"conditional_gaussian conditions on image pixels; data.dataset {datasetName} is not an image dataset" (Some "conditional_gaussian") []
              | Some(ConditionalGaussian c) ->
                  let side = Domain.imageSide spec.Data.Dataset
                  match c.Box with
                  | [ top; left; height; width ] when top + height > side || left + width > side ->
                      yield at "sampler" $"the box must lie inside the {side}x{side} images of data.dataset {datasetName} (top + height and left + width at most {side})"
                               (Some(sprintf "[%d, %d, %d, %d]" top left height width)) []
                  | _ -> ()
              | _ -> ()
              if modality <> Domain.Image && Domain.imageOnlyMethod m.Kind then
                  yield at "method" $"this method works on image pixels; data.dataset {datasetName} is not an image dataset" (Some(Catalogue.methodName m.Kind)) []
              match Domain.stageOf m.Kind with
              | Some stage when not (modality <> Domain.Image && Domain.imageOnlyMethod m.Kind) && not (List.contains stage (Domain.spatialStagesOf spec.Model.Architecture)) ->
                  yield at "stage" $"model.architecture {architectureName spec.Model.Architecture} has no stage '{stage}'" (Some stage) (Domain.spatialStagesOf spec.Model.Architecture)
              | _ -> ()
              match m.Kind with
              | MipIn _ when not (Domain.invertibleStages spec.Model.Architecture) ->
                  yield at "method" $"mip_in inverts the model stage by stage, which model.architecture {architectureName spec.Model.Architecture} does not offer" (Some "mip_in") [ "model.architecture: fashion_cnn" ]
              | _ -> ()
              if Domain.ruleBasedMethod m.Kind && not (Domain.hasRectifiers spec.Model.Architecture) then
                  yield at "method" $"this method replaces the model's ReLUs; model.architecture {architectureName spec.Model.Architecture} has none to replace"
                           (Some(Catalogue.methodName m.Kind)) (Catalogue.Names.architectures |> List.filter (snd >> Domain.hasRectifiers) |> List.map (fst >> sprintf "model.architecture: %s")) ])
    let metricErrors =
        spec.Metrics
        |> List.indexed
        |> List.collect (fun (i, m) ->
            let at message allowed =
                let line, column = entryPosition text "metrics" i "metric"
                SpecError.make name line column $"metrics[{i}].metric" message (Some(Catalogue.metricName m)) allowed
            [ match m, spec.Data.Dataset with
              | EffectiveHeatRatio, d when d <> FashionCanvas ->
                  yield at "effective_heat_ratio needs ground-truth boxes, which only data.dataset fashion_canvas has" [ "data.dataset: fashion_canvas" ]
              | TwoWord _, d when d <> SpeechCommands ->
                  yield at "two_word needs spoken words, which only data.dataset speech_commands has" [ "data.dataset: speech_commands" ]
              | _ when not (List.contains modality (Domain.metricModalities m)) ->
                  let fitting = Catalogue.metrics |> List.filter (fun v -> v.Default |> Option.forall (fun d -> List.contains modality (Domain.metricModalities d))) |> List.map _.Name
                  let modalityName = match modality with Domain.Image -> "image" | Domain.Text -> "text" | Domain.Audio -> "audio"
                  yield at $"this metric is not defined on {modalityName} inputs (data.dataset {datasetName})" fitting
              | _ -> () ])
    modelErrors @ methodErrors @ metricErrors

/// Parses and validates one spec: the spec or every error, formatted.
let private load (name: string, text: Result<string, string>) =
    match text with
    | Error message -> Error message
    | Ok text ->
        match Yaml.parseText name text with
        | Error errors -> Error(SpecError.formatAll errors)
        | Ok spec ->
            match Validate.spec spec @ missingFiles name text spec @ compositionErrors name text spec with
            | [] -> Ok(spec, text)
            | errors -> Error(SpecError.formatAll errors)

/// The spec at the paper's scale (`run --full`): named NAME-full, every test input (or the full section's
/// `explain`), the whole training set, the full section's `epochs` where it gives them.
let atFullScale (spec: Spec) =
    { spec with
        Name = spec.Name + "-full"
        Data = { spec.Data with Explain = defaultArg spec.Full.Explain Int32.MaxValue; TrainLimit = None }
        Model = { spec.Model with Epochs = defaultArg spec.Full.Epochs spec.Model.Epochs } }

let private overrides (args: ParseResults<RunArgs>) (spec: Spec) =
    let spec =
        match args.TryGetResult RunArgs.Device with
        | Some Auto -> { spec with Device = Device.Auto }
        | Some Cpu -> { spec with Device = Device.Cpu }
        | Some Cuda -> { spec with Device = Device.Cuda }
        | None -> spec
    let spec =
        if args.Contains RunArgs.Full then atFullScale spec else spec
    let spec = match args.TryGetResult RunArgs.Explain with Some n -> { spec with Data = { spec.Data with Explain = n } } | None -> spec
    match args.TryGetResult RunArgs.Output with Some o -> { spec with Output = o } | None -> spec

let private planOf (spec: Spec) = Plan.compile spec (Execute.dataHash spec)

let private runOne (spec: Spec) =
    let started = DateTime.UtcNow
    let device = Attribution.Runtime.TorchRuntime.Resolve(Execute.deviceRequest spec.Device)
    let plan = planOf spec
    eprintfn "%s" (Plan.describe plan)
    let output = Execute.run plan device
    let env = RunEnvironment.capture device started
    let folder = Report.write plan (Yaml.render spec) output env
    printfn "%s: report written to %s" spec.Name (Path.Combine(folder, "report.md"))

/// Known failures (bad input, missing data or devices) print their message; anything else is a bug and keeps its stack trace.
let private guarded (action: unit -> unit) =
    try
        action ()
        0
    with
    | :? Attribution.Data.DataNotFoundException as e -> eprintfn "error: %s" e.Message; 3
    | :? FileNotFoundException as e -> eprintfn "error: %s" e.Message; 3
    | :? InvalidOperationException as e when e.Message.Contains Attribution.Runtime.TorchRuntime.LibTorchVariable -> eprintfn "error: %s" e.Message; 3

/// The specs of `paths`, keeping only those named in `only` when it is not empty; an `only` name that no spec has is
/// an error listing the names there are.
let selectSpecs (only: string list) (specs: (Spec * string) list) =
    let names = specs |> List.map (fun (spec, _) -> spec.Name)
    match only |> List.filter (fun n -> not (List.contains n names)) with
    | [] when only.IsEmpty -> Ok specs
    | [] -> Ok(specs |> List.filter (fun (spec, _) -> List.contains spec.Name only))
    | missing ->
        let quoted = missing |> List.map (sprintf "'%s'") |> String.concat ", "
        Error $"""--only {quoted}: no such spec; the specs given are {names |> String.concat ", "}"""

let private withSpecs (paths: string list) (only: string list) (action: Spec -> string -> unit) =
    let loaded = sources paths |> List.map load
    let errors = loaded |> List.choose (function Error e -> Some e | Ok _ -> None)
    if not errors.IsEmpty then
        for e in errors do eprintfn "%s" e
        1
    else
        match selectSpecs only (loaded |> List.choose (function Ok s -> Some s | Error _ -> None)) with
        | Error e -> eprintfn "error: %s" e; 1
        | Ok specs -> guarded (fun () -> for spec, text in specs do action spec text)

/// One line per step of the plan: its short hash, whether the cache holds it (cached, partial, to do) and its name.
let cacheState (plan: Plan.Plan) =
    plan.Steps
    |> List.map (fun s ->
        let dir = Path.Combine(Artefacts.root (), (match s.Kind with Plan.ProvideModel -> "models" | Plan.Attribute _ -> "attributions" | _ -> "metrics"))
        let files = if Directory.Exists dir then Directory.GetFiles(dir, s.Hash + ".*") |> Array.map (fun f -> match Path.GetFileName f with null -> "" | n -> n) else [||]
        // An interrupted attribution step leaves its finished calls as parts (Execute.partFile).
        let parts = files |> Array.filter (fun f -> f.Contains ".part-") |> Array.length
        let state =
            match s.Kind with
            | Plan.EstimateCovariance _ -> "each run"   // seconds to recompute; not worth a 25 MB artefact per class set
            | _ when files.Length > parts -> "cached  "
            | _ when parts > 0 -> $"partial ({parts} calls stored)"
            | _ -> "to do   "
        $"  {Hashing.short s.Hash}  {state}  {s.Name}")
    |> String.concat "\n"

let run (argv: string[]) =
    let argv =
        match argv with
        | [||] -> [| "run" |]
        | _ when argv.[0].EndsWith ".yaml" || argv.[0].EndsWith ".yml" -> Array.append [| "run" |] argv
        | _ -> argv
    let parser = ArgumentParser.Create<Command>(programName = "attribution", errorHandler = ProcessExiter())
    let command = parser.ParseCommandLine(argv)
    match command.GetSubCommand() with
    | List _ -> printfn "%s" (Catalogue.describe ()); 0
    | Validate args ->
        withSpecs (args.GetResult(SpecArgs.Specs, defaultValue = [])) (args.GetResults SpecArgs.Only) (fun spec _ -> printfn "%s: valid (%d methods, %d metrics)" spec.Name spec.Methods.Length spec.Metrics.Length)
    | Plan args ->
        withSpecs (args.GetResult(SpecArgs.Specs, defaultValue = [])) (args.GetResults SpecArgs.Only) (fun spec _ ->
            let plan = planOf spec
            printfn "%s" (Plan.describe plan)
            printfn "cache (%s):\n%s" (Artefacts.root ()) (cacheState plan))
    | Bench args ->
        let request =
            match args.TryGetResult BenchArgs.Device with
            | Some Cpu -> Attribution.Runtime.DeviceRequest.Cpu
            | Some Cuda -> Attribution.Runtime.DeviceRequest.Cuda
            | _ -> Attribution.Runtime.DeviceRequest.Auto
        guarded (fun () ->
            Benchmark.run (Attribution.Runtime.TorchRuntime.Resolve request) (args.GetResult(Epochs, 8)) (args.GetResult(Inputs, 100)) (args.GetResult(Samples, 50)))
    | Run args ->
        withSpecs (args.GetResult(RunArgs.Specs, defaultValue = [])) (args.GetResults RunArgs.Only) (fun spec _ -> runOne (overrides args spec))
