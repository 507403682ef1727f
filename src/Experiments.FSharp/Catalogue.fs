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
    let samplers = Vocabulary.samplers
    let samplerNames = Vocabulary.samplerNames

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
        [ yield! describeVariants "Methods (methods: - method: NAME, parameters beside it; id defaults to NAME)" (methods ())
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

    // --- the docs' tables ----------------------------------------------------------------------

    let private cell (text: string) = text.Replace("|", "\\|").Replace("\n", " ")

    let private markdownParams (ps: ParamInfo list) =
        if ps.IsEmpty then "none"
        else
            ps
            |> List.map (fun p -> sprintf "`%s` (%s; %s)" p.Name (p.Default |> Option.defaultValue "required") p.Allowed)
            |> String.concat ", "
            |> cell

    let private markdownTable (key: string) (third: string) (vs: Variant<'k> list) =
        [ yield $"| {key} | parameters (default; allowed) | {third} |"
          yield "|---|---|---|"
          for v in vs do
              yield $"| `{v.Name}` | {markdownParams v.Params} | {cell v.Doc} |" ]
        |> String.concat "\n"

    /// The tables of docs/dsl.md (methods, samplers, metrics), from the same declarations YAML is read with;
    /// `attribution list --markdown` prints them, and a test checks the docs hold them as printed.
    let markdown () : (string * string) list =
        [ "methods", markdownTable "method" "definition" (methods ())
          "samplers", markdownTable "kind" "distribution" samplers
          "metrics", markdownTable "metric" "definition" metrics ]

