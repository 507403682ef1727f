/// The registry is open: a method defined here, in the test project, is registered from this code (no edit to the
/// library) and then used by name in YAML, validated by its own facts, planned, run end to end and listed.
module RegistryTests

open System
open System.IO
open Expecto
open TorchSharp
open Attribution.Methods
open Experiments

/// The test's own method: a constant map of `weight` (any map would do; a constant one is easy to check in the cache).
type ConstantMapParameters = { Weight: float }

type ConstantMap(weight: float) =
    interface IAttributionMethod with
        member _.Describe() = $"constant map {weight}"
        member _.Explain(_, inputs, _, _) = new Explanation(torch.full_like(inputs, TorchSharp.Scalar.op_Implicit weight))

let private entry =
    MethodEntry.custom
        "constant_map"
        "a constant map of the given weight (a method of the test project)"
        "test"
        (Fields.field (fun (p: ConstantMapParameters) -> p.Weight) (Param.float "weight" "the map's value" (Some 1.0) true 100.0)
         |> Fields.map (fun w -> { Weight = w }))
        (fun _ -> MethodFacts.imagesOnly)
        (fun _ p -> ConstantMap(p.Weight))

/// The test's own metric: the mean of a method's map over the inputs (for the constant map, its weight).
type MeanMap() =
    interface Attribution.Metrics.IMetric with
        member _.Evaluate(inputs) =
            Attribution.Metrics.MetricEvaluation([| Collections.Generic.KeyValuePair("mean", inputs.Maps.mean().item<float32>() |> float) |])

let private metricEntry =
    MetricEntry.custom
        "mean_map"
        "the mean of a method's map (a metric of the test project)"
        (Fields.ret ())
        (fun () -> { MetricFacts.everywhere with Modalities = [ Modality.Image ]; Better = [ "mean", true ] })
        (fun () -> MeanMap() :> Attribution.Metrics.IMetric)

/// The blocks a per-input metric was given (first input, count), in order: the runner's block-wise evaluation, seen.
let private blocksSeen = Collections.Generic.List<int * int>()

/// The test's own per-input metric: each input's mean map, and the same left undefined (NaN) for every fifth input.
type MeanMapPerInput() =
    interface Attribution.Metrics.IPerInputMetric with
        member _.EvaluateInputs(block, firstInput) =
            let n = int block.Maps.shape.[0]
            blocksSeen.Add((firstInput, n))
            let means = block.Maps.reshape(int64 n, -1L).``to``(torch.ScalarType.Float64).mean([| 1L |]).data<float>().ToArray()
            [| Collections.Generic.KeyValuePair("mean", means)
               Collections.Generic.KeyValuePair("mean_but_every_fifth", means |> Array.mapi (fun i v -> if (firstInput + i) % 5 = 0 then nan else v)) |]

let private perInputEntry =
    MetricEntry.custom
        "mean_map_per_input"
        "each input's mean map (a per-input metric of the test project)"
        (Fields.ret ())
        (fun () -> { MetricFacts.everywhere with Modalities = [ Modality.Image ]; Better = [ "mean", true ] })
        (fun () -> MeanMapPerInput() :> Attribution.Metrics.IMetric)

/// The test's own sampler: every point is the input itself, so SmoothGrad with it is the plain gradient.
type AtInput() =
    interface Attribution.Sampling.ISampler with
        member _.Describe() = "the input itself"
        member _.Draw(input, _, count, _) =
            new Attribution.Sampling.SampleSet(input.expand(int64 count, -1L, -1L, -1L).clone(), torch.full(int64 count, 1.0 / float count, dtype = torch.ScalarType.Float64, device = input.device))

let private samplerEntry =
    SamplerRegistry.custom "at_input" "every point is the input (a sampler of the test project)" (Fields.ret ())
        (fun () -> { Gaussian = false; ImagesOnly = false })
        (fun _ () -> AtInput() :> Attribution.Sampling.ISampler)

let private registered (f: unit -> unit) =
    MethodRegistry.register entry
    try f () finally MethodRegistry.unregister "constant_map"

let private captured (f: unit -> 'a) : 'a * string =
    let writer = new StringWriter()
    let original = Console.Error
    Console.SetError writer
    try f (), writer.ToString() finally Console.SetError original

let private withCache (cache: string) (f: unit -> 'a) =
    Environment.SetEnvironmentVariable("ATTRIBUTION_CACHE", cache)
    try f () finally Environment.SetEnvironmentVariable("ATTRIBUTION_CACHE", null)

let private spec (dataset: string) (architecture: string) (extra: string) =
    $"name: registry\ndata: {{ dataset: {dataset}, explain: 6, train_limit: 400 }}\nmodel: {{ architecture: {architecture}, epochs: 1 }}\nmethods:\n  - method: saliency\n  - method: constant_map\n{extra}metrics:\n  - metric: negative_perturbation\n    fractions: [0.25, 0.75]\n  - metric: rank_agreement\n"

[<Tests>]
let tests =
    testSequenced <| testList "registry" [
        test "a method registered from the test project runs from a YAML spec end to end, with its parameter" {
            registered (fun () ->
                let root = TestFiles.freshDir "registry"
                let file = Path.Combine(root, "registry.yaml")
                File.WriteAllText(file, spec "fashion_mnist" "fashion_cnn" "    weight: 2.5\n")
                let cache = Path.Combine(root, "cache")
                Environment.SetEnvironmentVariable("ATTRIBUTION_CACHE", cache)
                try
                    let code, stderr = captured (fun () -> Cli.run [| "run"; file; "--output"; Path.Combine(root, "runs") |])
                    Expect.equal code ExitCode.Ok stderr
                    let metrics = File.ReadAllText(Path.Combine(root, "runs", "registry", "latest", "metrics.json"))
                    Expect.stringContains metrics "\"constant_map\"" "the method's results are in metrics.json"
                    // the maps in the cache are the method's own: 2.5 everywhere
                    let parsed = match Yaml.parseFile file with Ok s -> s | Error e -> failtest (SpecError.formatAll e)
                    let plan = withCache cache (fun () -> Plan.compile parsed (Execute.dataHash parsed))
                    let step = plan.Steps |> List.find (fun s -> s.Name = "attribute/constant_map/predicted")
                    let stored = Attribution.Models.Safetensors.LoadVerified(Path.Combine(cache, "attributions", step.Hash + ".safetensors"))
                    Expect.isTrue (stored.["maps"].eq(torch.tensor(2.5f)).all().item<bool>()) "every element is the weight"
                finally
                    Environment.SetEnvironmentVariable("ATTRIBUTION_CACHE", null))
        }

        test "a metric registered from the test project evaluates every method's maps through its IMetric, from YAML" {
            registered (fun () ->
                MetricRegistry.register metricEntry
                try
                    let root = TestFiles.freshDir "registry-metric"
                    let file = Path.Combine(root, "registry.yaml")
                    File.WriteAllText(file, (spec "fashion_mnist" "fashion_cnn" "    weight: 2.5\n") + "  - metric: mean_map\n")
                    withCache (Path.Combine(root, "cache")) (fun () ->
                        let code, stderr = captured (fun () -> Cli.run [| "run"; file; "--output"; Path.Combine(root, "runs") |])
                        Expect.equal code ExitCode.Ok stderr)
                    use doc = Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(root, "runs", "registry", "latest", "metrics.json")))
                    let means =
                        [ for m in doc.RootElement.GetProperty("Metrics").EnumerateArray() do
                            if m.GetProperty("Metric").GetString() = "mean_map" then
                                yield string (m.GetProperty("Method").GetString()), m.GetProperty("Scalars").[0].GetProperty("Value").GetDouble() ]
                    Expect.equal (means |> List.map fst |> List.sort) [ "constant_map"; "saliency" ] "one result per method"
                    Expect.floatClose Accuracy.high (means |> List.find (fst >> (=) "constant_map") |> snd) 2.5 "the constant map's mean is its weight"
                    match Validate.text "r.yaml" ((spec "spam_assassin" "text_cnn" "") + "  - metric: mean_map\n") with
                    | Error errors -> Expect.exists errors (fun e -> e.Path = "metrics[2].metric" && e.Message.Contains "not defined on text") (SpecError.formatAll errors)
                    | Ok _ -> failtest "its facts say images only"
                finally
                    MetricRegistry.unregister "mean_map")
        }

        test "a per-input metric registered from the test project is evaluated a block of maps at a time, with means of defined values, intervals and per-input values" {
            registered (fun () ->
                MetricRegistry.register perInputEntry
                try
                    let root = TestFiles.freshDir "registry-per-input"
                    let file = Path.Combine(root, "per-input.yaml")
                    // 1,100 inputs: a block of 1,024 and one of 76
                    let yaml = (spec "fashion_mnist" "fashion_cnn" "    weight: 2.5\n").Replace("explain: 6", "explain: 1100") + "  - metric: mean_map_per_input\n"
                    File.WriteAllText(file, yaml)
                    let cache = Path.Combine(root, "cache")
                    blocksSeen.Clear()
                    let parsed = match Validate.text file yaml with Ok s -> s | Error e -> failtest (SpecError.formatAll e)
                    let output =
                        withCache cache (fun () ->
                            let device = Attribution.Runtime.TorchRuntime.Resolve(Attribution.Runtime.DeviceRequest.Cpu)
                            Execute.run (Plan.compile parsed (Execute.dataHash parsed)) device)
                    Expect.equal (List.ofSeq blocksSeen) [ 0, 1024; 1024, 76; 0, 1024; 1024, 76 ] "two methods, each in two blocks"
                    for methodId in [ "saliency"; "constant_map" ] do
                        let r = output.Result.Metrics |> Array.find (fun m -> m.Metric = "mean_map_per_input" && m.Method = methodId)
                        // against the maps as stored, whole
                        use maps = output.Maps.[(methodId, Predicted)].All()
                        let whole = (MeanMapPerInput() :> Attribution.Metrics.IMetric).Evaluate(Attribution.Metrics.MetricInputs(torch.nn.Identity(), maps, maps, maps, 0L, torch.CPU, 64))
                        for name in [ "mean"; "mean_but_every_fifth" ] do
                            let perInput = r.PerInput |> Array.find (fun p -> p.Name = name)
                            let expected = whole.PerInput |> Seq.find (fun kv -> kv.Key = name) |> _.Value
                            let same (a: float) (b: float) = a = b || (System.Double.IsNaN a && System.Double.IsNaN b)
                            Expect.isTrue (perInput.Values.Length = expected.Length && Array.forall2 same perInput.Values expected) $"{methodId} {name}: the values of the whole set"
                            let defined = expected |> Array.filter (System.Double.IsNaN >> not)
                            Expect.hasLength defined (if name = "mean" then 1100 else 880) "every fifth left out"
                            let scalar = r.Scalars |> Array.find (fun v -> v.Name = name) |> _.Value
                            Expect.floatClose Accuracy.high scalar (Array.average defined) $"{methodId} {name}: the mean of the defined values"
                            let interval = r.Intervals |> Array.find (fun i -> i.Name = name)
                            Expect.isTrue (interval.Low <= scalar && scalar <= interval.High) $"{methodId} {name}: {interval.Low} <= {scalar} <= {interval.High}"
                    let constant = output.Result.Metrics |> Array.find (fun m -> m.Metric = "mean_map_per_input" && m.Method = "constant_map")
                    Expect.floatClose Accuracy.high (constant.Scalars |> Array.find (fun v -> v.Name = "mean") |> _.Value) 2.5 "the constant map's mean is its weight"
                finally
                    MetricRegistry.unregister "mean_map_per_input")
        }

        test "a sampler registered from the test project drives a shipped sampling method from YAML" {
            SamplerRegistry.register samplerEntry
            try
                let root = TestFiles.freshDir "registry-sampler"
                let file = Path.Combine(root, "sampler.yaml")
                let yaml = "name: sampler\ndata: { dataset: fashion_mnist, explain: 6, train_limit: 400 }\nmodel: { architecture: fashion_cnn, epochs: 1 }\nexplain: { targets: [predicted], output: logit }\nmethods:\n  - { method: saliency, abs: false }\n  - { method: smooth_grad, samples: 3, sampler: { kind: at_input } }\nmetrics:\n  - metric: rank_agreement\n"
                File.WriteAllText(file, yaml)
                let cache = Path.Combine(root, "cache")
                let code, stderr = withCache cache (fun () -> captured (fun () -> Cli.run [| "run"; file; "--output"; Path.Combine(root, "runs") |]))
                Expect.equal code ExitCode.Ok stderr
                let parsed = match Validate.text file yaml with Ok s -> s | Error e -> failtest (SpecError.formatAll e)
                let plan = withCache cache (fun () -> Plan.compile parsed (Execute.dataHash parsed))
                let mapsOf (name: string) =
                    let step = plan.Steps |> List.find (fun st -> st.Name = name)
                    Attribution.Models.Safetensors.LoadVerified(Path.Combine(cache, "attributions", step.Hash + ".safetensors")).["maps"]
                Expect.isTrue ((mapsOf "attribute/smooth_grad/predicted").allclose(mapsOf "attribute/saliency/predicted", 1e-5, 1e-7))
                    "SmoothGrad at the input itself is the gradient"
                let fisher = yaml.Replace("{ method: smooth_grad, samples: 3,", "{ method: functional_information, samples: 3,").Replace("output: logit", "output: probability")
                match Validate.text "f.yaml" fisher with
                | Error errors -> Expect.exists errors (fun e -> e.Path = "methods[1].sampler" && e.Message.Contains "Gaussian") (SpecError.formatAll errors)
                | Ok _ -> failtest "the sampler's facts say it is not Gaussian"
            finally
                SamplerRegistry.unregister "at_input"
        }

        test "a registered method's parameters have defaults and ranges, and its facts are validation rules" {
            registered (fun () ->
                match Validate.text "r.yaml" (spec "fashion_mnist" "fashion_cnn" "") with
                | Ok s ->
                    match s.Methods.[1].Kind with
                    | Registered r -> Expect.equal (r.Entry, unbox<ConstantMapParameters> r.Parameters) ("constant_map", { Weight = 1.0 }) "the default weight"
                    | other -> failtest $"decoded as {other}"
                | Error e -> failtest (SpecError.formatAll e)
                match Validate.text "r.yaml" (spec "fashion_mnist" "fashion_cnn" "    weight: -1\n") with
                | Error [ e ] -> Expect.equal (e.Path, e.Line) ("methods[1].weight", 7) (SpecError.format e)
                | other -> failtest $"expected one range error, got {other}"
                match Validate.text "r.yaml" (spec "spam_assassin" "text_cnn" "") with
                | Error errors -> Expect.exists errors (fun e -> e.Path = "methods[1].method" && e.Message.Contains "image pixels") (SpecError.formatAll errors)
                | Ok _ -> failtest "the entry's facts say images only"
                Expect.stringContains (CatalogueText.describe ()) "constant_map" "list shows it"
                Expect.stringContains (Yaml.render (match Yaml.parseText "r.yaml" (spec "fashion_mnist" "fashion_cnn" "    weight: 3\n") with Ok s -> s | Error e -> failtest (SpecError.formatAll e))) "method: constant_map, weight: 3" "and writes it back")
        }

        test "an unregistered name is an unknown method, a taken name or an unsafe one is refused at registration" {
            match Validate.text "r.yaml" (spec "fashion_mnist" "fashion_cnn" "") with
            | Error errors -> Expect.exists errors (fun e -> e.Path = "methods[1].method" && e.Message = "unknown method") (SpecError.formatAll errors)
            | Ok _ -> failtest "not registered"
            registered (fun () ->
                Expect.throwsT<ArgumentException> (fun () -> MethodRegistry.register entry) "a second registration")
            Expect.throwsT<ArgumentException> (fun () -> MethodRegistry.register { entry with Variant = { entry.Variant with Name = "smooth_grad" } }) "a shipped name"
            Expect.throwsT<ArgumentException> (fun () -> MethodRegistry.register { entry with Variant = { entry.Variant with Name = "Bad Name" } }) "an unsafe name"
        }
    ]

/// Each shipped method's noise seed at its defaults (spec seed 7), as every published run drew it: derived from F#'s
/// layout of the method's parameters (Plan.methodSeed). Taken from the build before the registry (85df585) and checked
/// equal there; a change to how entries hold their parameters must not move a seed, or every number would move.
let private publishedSeeds =
    dict [
          "saliency", 3414912895741465107L
          "gradient_x_input", 5018288783671777872L
          "integrated_gradients", 110576993312260662L
          "smooth_grad", 7260192483774612132L
          "smooth_grad_sq", 1955904938548883500L
          "var_grad", 424401005800821903L
          "functional_information", 3161501383124035637L
          "guided_backprop", 4266544802446550834L
          "deconvnet", 2056405110351794690L
          "neflag", 5750853607813201124L
          "occlusion", 372681501598055687L
          "lime", 2910752315194830727L
          "grad_cam", 2441653855156335043L
          "feature_suppression", 5668778503444363542L
          "expected_gradients", 3957800323294775163L
          "guided_ig", 1376750309091574427L
          "agi", 8800423039481602032L
          "information_bottleneck", 6158626220202203L
          "input_iba", 2812769581912226833L
          "extremal_perturbation", 7501015451738992078L
          "mip_in", 4275693574616605535L
          "deep_lift", 2242321068230546780L
          "deep_shap", 3086682904492464895L
          "taylor", 6023967887916317686L
          "sampled_gradients", 5603056559675324583L
          "random", 309842615090245771L ]

[<Tests>]
let seeds =
    testList "registry seeds" [
        test "every shipped method draws the noise of published runs" {
            let spec = Dsl.spec "s" |> Dsl.withSeed 7
            Expect.equal (MethodRegistry.shipped |> List.map _.Name |> set) (set publishedSeeds.Keys) "every shipped method has its seed here"
            for e in MethodRegistry.shipped do
                Expect.equal (Plan.methodSeed spec (Variant.dflt e.Variant)) publishedSeeds.[e.Name] e.Name
        }
    ]

/// The repository root (where Mixed.sln is), found from the test binary's folder.
let private repoRoot = TestProcesses.repoRoot

[<Tests>]
let docs =
    testList "registry docs" [
        test "docs/dsl.md's tables of methods, samplers and metrics are the registry's, every entry with its parameters" {
            let doc = File.ReadAllText(Path.Combine(repoRoot, "docs", "dsl.md")).Replace("\r\n", "\n")
            for name, table in CatalogueText.markdown () do
                let opening = $"<!-- generated: {name} (attribution list --markdown) -->\n"
                let closing = $"\n<!-- end of generated {name} -->"
                let start = doc.IndexOf opening
                Expect.isGreaterThanOrEqual start 0 $"docs/dsl.md has the generated {name} table"
                let body = doc.Substring(start + opening.Length, doc.IndexOf(closing, start) - start - opening.Length)
                Expect.equal body table $"docs/dsl.md's {name} table is out of date: regenerate it with `attribution list --markdown`"
            Expect.equal (MethodRegistry.shipped.Length) 26 "26 shipped methods, each a row"
        }

        test "docs/methods.md's table of names in specs holds every shipped method once, and docs/metrics.md's list in specs every shipped metric" {
            // The text of the section `## heading`, up to the next `## `.
            let section (file: string) (heading: string) =
                let doc = File.ReadAllText(Path.Combine(repoRoot, "docs", file)).Replace("\r\n", "\n")
                let opening = $"\n## {heading}\n"
                let start = doc.IndexOf opening
                Expect.isGreaterThanOrEqual start 0 $"docs/{file} has the section '{heading}'"
                let rest = doc.Substring(start + opening.Length)
                match rest.IndexOf "\n## " with
                | -1 -> rest
                | next -> rest.Substring(0, next)
            let quoted (text: string) = [ for m in Text.RegularExpressions.Regex.Matches(text, "`([a-z_0-9]+)`") -> m.Groups.[1].Value ]
            let firstColumn =
                (section "methods.md" "Names in specs").Split('\n')
                |> Array.filter (fun line -> line.StartsWith "| `")
                |> Array.collect (fun line -> quoted (line.Split('|').[1]) |> Array.ofList)
            let methods = MethodRegistry.shipped |> List.map _.Name
            Expect.equal (Array.sort firstColumn) (methods |> List.sort |> Array.ofList) "docs/methods.md, Names in specs: each shipped method once, no other name"
            let listed = quoted (section "metrics.md" "In specs") |> set
            for e in MetricRegistry.shipped do
                Expect.isTrue (listed.Contains e.Name) $"docs/metrics.md, In specs, names `{e.Name}`"
        }
    ]
