/// A tiny experiment through the whole pipeline: spec -> plan -> run -> report, on the real data.
module PipelineTests

open System
open System.IO
open System.Text.Json
open Expecto
open Experiments

let private tinySpec (output: string) : Spec =
    let sampling sampler = { Samples = 8; Sampler = sampler }
    { Name = "tiny"
      Seed = 3
      Device = Cpu
      Output = output
      Data = { Dataset = FashionMnist; Root = None; TrainLimit = Some 3000; Explain = 24; UtterancesPerWord = None }
      Model = { Architecture = FashionCnn; Epochs = 1; BatchSize = 64; LearningRate = 0.002; Weights = None; Normalise = None }
      Explain = { Targets = [ GroundTruth; Predicted ]; Output = Probability; BatchSize = 64; CommonNoise = false; Precision = Fp32 }
      Methods =
        [ { Id = "saliency"; Kind = Saliency true }
          { Id = "ig"; Kind = IntegratedGradients(8, GaussLegendre) }
          { Id = "fi_nu"; Kind = FunctionalInformation(sampling (IsotropicGaussian 0.15)) }
          { Id = "fi_nu_again"; Kind = FunctionalInformation(sampling (IsotropicGaussian 0.15)) }
          { Id = "fi_sigma"; Kind = FunctionalInformation(sampling (CovarianceGaussian { Scale = 0.15; Covariance = ClassCovariance; Jitter = 1e-5; Structure = SharedAcrossChannels; Rank = 64 })) } ]
      Metrics = [ NegativePerturbation { Fractions = [ 0.1; 0.5; 0.9 ]; MaskValue = 0.0 }; RankAgreement ]
      Report = { HeatmapInputs = 3 }
      Full = { Explain = None; Epochs = None } }

/// Executes a spec's plan on the CPU with its own cache folder (no report): the run's output.
let private executeWithCache (spec: Spec) (cache: string) =
    Environment.SetEnvironmentVariable("ATTRIBUTION_CACHE", cache)
    try
        let device = Attribution.Runtime.TorchRuntime.Resolve(Attribution.Runtime.DeviceRequest.Cpu)
        Execute.run (Plan.compile spec (Execute.dataHash spec)) device
    finally
        Environment.SetEnvironmentVariable("ATTRIBUTION_CACHE", null)

/// Runs a spec with its own cache folder; returns the run folder.
let private runWithCache (spec: Spec) (cache: string) =
    Environment.SetEnvironmentVariable("ATTRIBUTION_CACHE", cache)
    try
        let device = Attribution.Runtime.TorchRuntime.Resolve(Attribution.Runtime.DeviceRequest.Cpu)
        let plan = Plan.compile spec (Execute.dataHash spec)
        let output = Execute.run plan device
        Report.write plan "# tiny\n" output (RunEnvironment.capture device DateTime.UtcNow)
    finally
        Environment.SetEnvironmentVariable("ATTRIBUTION_CACHE", null)

let private metricsOf (folder: string) = File.ReadAllText(Path.Combine(folder, "metrics.json")) |> JsonDocument.Parse

let private numbers (doc: JsonDocument) =
    // everything but timings, which legitimately differ between runs
    [ doc.RootElement.GetProperty("NegativePerturbation").GetRawText()
      doc.RootElement.GetProperty("RankAgreement").GetRawText()
      doc.RootElement.GetProperty("LogSobolev").GetRawText()
      doc.RootElement.GetProperty("Model").GetProperty("TestAccuracy").GetRawText() ]

/// A small spec of another modality: saliency, SmoothGrad and FI with the class covariance, negative perturbation.
let private modalitySpec (output: string) (dataset: DatasetKind) (architecture: Architecture) (learningRate: float) =
    { tinySpec output with
        Name = "tiny-modality"
        Data = { Dataset = dataset; Root = None; TrainLimit = Some 300; Explain = 8; UtterancesPerWord = Some 6 }
        Model = { Architecture = architecture; Epochs = 1; BatchSize = 64; LearningRate = learningRate; Weights = None; Normalise = None }
        Methods =
          [ { Id = "saliency"; Kind = Saliency true }
            { Id = "smooth_grad"; Kind = SmoothGrad { Samples = 4; Sampler = IsotropicGaussian 0.05 } }
            { Id = "fi_sigma"; Kind = FunctionalInformation { Samples = 4; Sampler = CovarianceGaussian { Scale = 0.15; Covariance = ClassCovariance; Jitter = 1e-5; Structure = SharedAcrossChannels; Rank = 64 } } } ]
        Metrics = [ NegativePerturbation { Fractions = [ 0.1; 0.5; 0.9 ]; MaskValue = 0.0 }; RankAgreement ] }

[<Tests>]
let modalities =
    testSequenced <| testList "end to end, other modalities" [
        test "text: SpamAssassin with the CNN runs, masks words with <unk>, and draws token heatmaps" {
            let root = Path.Combine(Path.GetTempPath(), $"attribution-text-{Guid.NewGuid():N}")
            let spec = modalitySpec (Path.Combine(root, "runs")) SpamAssassin TextCnn 0.003
            // InputIBA on text: feature bottleneck at the CNN's conv stage, input bottleneck on the embeddings (WGAN skipped to stay quick)
            let inputIba = { Id = "input_iba"; Kind = InputIba { Stage = "conv"; BetaFeature = 0.5; BetaInput = 0.01; Epochs = 0; Steps = 3; ShowMask = false } }
            // IBA on text: the bottleneck on the same stage, a word's score its position's bits
            let iba = { Id = "iba"; Kind = InformationBottleneck("conv", 10.0, 3) }
            // LIME on words (<unk> replacement) and the random baseline
            let lime = { Id = "lime"; Kind = Lime(64, 4, 1.0) }
            let random = { Id = "random"; Kind = RandomMap }
            let spec = { spec with Methods = spec.Methods @ [ inputIba; iba; lime; random ]; Metrics = spec.Metrics @ [ InsertionDeletion(112, 20.0); SensitivityN(8, 3) ] }
            let folder = runWithCache spec (Path.Combine(root, "cache"))
            for file in [ "report.md"; "tokens-fi_sigma.html"; "tokens-fi_sigma.png"; "tokens-input_iba.html"; "tokens-iba.html"; "tokens-lime.html" ] do
                Expect.isTrue (File.Exists(Path.Combine(folder, file))) $"{file} written"
            let html = File.ReadAllText(Path.Combine(folder, "tokens-saliency.html"))
            Expect.stringContains html "predicted" "captions name the prediction"
            let doc = metricsOf folder
            Expect.equal (doc.RootElement.GetProperty("NegativePerturbation").GetArrayLength()) 7 "a curve set per method"
            Expect.stringContains (File.ReadAllText(Path.Combine(folder, "report.md"))) "text row" "compared with the paper's text row"
            // token insertion/deletion and Sensitivity-N: per method, on the token grid
            let metric name = [ for m in doc.RootElement.GetProperty("Metrics").EnumerateArray() do if m.GetProperty("Metric").GetString() = name then yield m ]
            let scalar (m: JsonElement) name = [ for v in m.GetProperty("Scalars").EnumerateArray() do if v.GetProperty("Name").GetString() = name then yield v.GetProperty("Value").GetDouble() ] |> List.exactlyOne
            let games = metric "insertion_deletion"
            Expect.equal games.Length 7 "insertion_deletion per method"
            for m in games do
                let deletion, insertion = scalar m "deletion", scalar m "insertion"
                Expect.isTrue (deletion >= 0.0 && deletion <= 1.0 && insertion >= 0.0 && insertion <= 1.0) "AUCs of probabilities"
                Expect.floatClose Accuracy.high (scalar m "difference") (insertion - deletion) "difference = insertion - deletion"
                Expect.equal (m.GetProperty("X").GetArrayLength()) 21 "20 steps of each input's length"
                // each scalar has its 95% interval over the e-mails, and the interval holds the scalar
                let intervals = [ for i in m.GetProperty("Intervals").EnumerateArray() -> i.GetProperty("Name").GetString(), (i.GetProperty("Low").GetDouble(), i.GetProperty("High").GetDouble()) ] |> Map.ofList
                for name in [ "deletion"; "insertion"; "difference" ] do
                    let low, high = intervals |> Map.tryFind name |> Option.defaultWith (fun () -> failtest $"no interval for {name}")
                    Expect.isTrue (low <= scalar m name && scalar m name <= high) $"{name}: {low} <= {scalar m name} <= {high}"
            let sensitivity = metric "sensitivity_n"
            Expect.equal sensitivity.Length 7 "sensitivity_n per method"
            for m in sensitivity do
                let r = scalar m "mean_correlation"
                Expect.isTrue (Double.IsNaN r || (r >= -1.0 && r <= 1.0)) "a correlation"
            Directory.Delete(root, true)
        }

        test "audio: espeak-ng speech with M5 runs, frames share one covariance, draws waveform heatmaps, and plays insertion/deletion and Sensitivity-N over 25 ms frames" {
            let root = Path.Combine(Path.GetTempPath(), $"attribution-audio-{Guid.NewGuid():N}")
            let spec =
                { modalitySpec (Path.Combine(root, "runs")) SpeechCommands M5 0.01 with
                    Metrics = [ NegativePerturbation { Fractions = [ 0.1; 0.5; 0.9 ]; MaskValue = 0.0 }; TwoWord 2
                                InsertionDeletion(28, 20.0); SensitivityN(10, 6) ] }
            let folder = runWithCache spec (Path.Combine(root, "cache"))
            for file in [ "report.md"; "waveforms-0-absolute.png"; "waveforms-0-signed.png" ] do
                Expect.isTrue (File.Exists(Path.Combine(folder, file))) $"{file} written"
            let doc = metricsOf folder
            let twoWord = [ for m in doc.RootElement.GetProperty("Metrics").EnumerateArray() do if m.GetProperty("Metric").GetString() = "two_word" then yield m ]
            Expect.equal twoWord.Length 3 "two_word per method"
            for m in twoWord do
                for s in m.GetProperty("Scalars").EnumerateArray() do
                    if string (s.GetProperty("Name").GetString()) = "right_share_on_first_word" then
                        let v = s.GetProperty("Value").GetDouble()
                        Expect.isTrue (v >= 0.0 && v <= 1.0) "a share"
                        // the mean share over the pairs has its interval over the pairs, which holds it
                        let interval = m.GetProperty("Intervals").EnumerateArray() |> Seq.find (fun i -> i.GetProperty("Name").GetString() = "right_share_on_first_word")
                        Expect.isTrue (interval.GetProperty("Low").GetDouble() <= v && v <= interval.GetProperty("High").GetDouble()) "the interval holds the mean share"
            // 1 s clips are 40 frames of 25 ms: insertion/deletion has 41 points, one frame a step, silence as the substrate
            for m in doc.RootElement.GetProperty("Metrics").EnumerateArray() do
                let scalar name = m.GetProperty("Scalars").EnumerateArray() |> Seq.find (fun v -> v.GetProperty("Name").GetString() = name) |> fun v -> v.GetProperty("Value").GetDouble()
                match m.GetProperty("Metric").GetString() with
                | "insertion_deletion" ->
                    Expect.equal (m.GetProperty("X").GetArrayLength()) 41 "0 to 40 frames"
                    Expect.stringContains (string (m.GetProperty("XLabel").GetString())) "frames set to silence" "the x axis says what changes"
                    let deletion, insertion = scalar "deletion", scalar "insertion"
                    Expect.isTrue (deletion >= 0.0 && deletion <= 1.0 && insertion >= 0.0 && insertion <= 1.0) $"AUCs of probabilities: {deletion}, {insertion}"
                    Expect.floatClose Accuracy.high (scalar "difference") (insertion - deletion) "difference"
                | "sensitivity_n" ->
                    Expect.equal [ for x in m.GetProperty("X").EnumerateArray() -> x.GetDouble() ] [ 1.0; 2.0; 4.0; 8.0; 16.0; 32.0 ] "N on the log grid up to 80% of 40 frames: 32^(i/5)"
                    let v = scalar "mean_correlation"
                    Expect.isTrue (v >= -1.0 && v <= 1.0) $"a correlation: {v}"
                | _ -> ()
            Directory.Delete(root, true)
        }
    ]

[<Tests>]
let tests =
    testSequenced <| testList "end to end" [
        test "an interrupted attribution step resumes from its stored calls: a stored part is loaded, not recomputed, and removed once the step is stored" {
            let root = Path.Combine(Path.GetTempPath(), $"attribution-resume-{Guid.NewGuid():N}")
            // IBA is called on 10 inputs at a time: 24 inputs are three calls (0-9, 10-19, 20-23).
            let spec =
                { tinySpec (Path.Combine(root, "runs")) with
                    Explain = { Targets = [ GroundTruth ]; Output = Probability; BatchSize = 64; CommonNoise = false; Precision = Fp32 }
                    Methods = [ { Id = "iba"; Kind = InformationBottleneck("conv2", 10.0, 2) } ]
                    Metrics = [ NegativePerturbation { Fractions = [ 0.1; 0.5 ]; MaskValue = 0.0 } ] }
            let step = (Plan.compile spec (Execute.dataHash spec)).Steps |> List.find (fun s -> s.Name = "attribute/iba/ground_truth")
            let mapsIn (cache: string) =
                let stored = Attribution.Models.Safetensors.Load(Path.Combine(cache, "attributions", step.Hash + ".safetensors"))
                stored.["maps"], Attribution.Models.Safetensors.ReadMetadata(Path.Combine(cache, "attributions", step.Hash + ".safetensors")).["seconds"] |> float
            let cacheA = Path.Combine(root, "cache-a")
            runWithCache spec cacheA |> ignore
            let whole, _ = mapsIn cacheA
            // A run that stopped after its first call: that call's part is on disk (here with a marker value no map has).
            let cacheB = Path.Combine(root, "cache-b")
            Environment.SetEnvironmentVariable("ATTRIBUTION_CACHE", cacheB)
            let part = Execute.partFile step.Hash 0 [| 0 .. 9 |]
            Environment.SetEnvironmentVariable("ATTRIBUTION_CACHE", null)
            Directory.CreateDirectory(Path.Combine(cacheB, "attributions")) |> ignore
            let marker = TorchSharp.torch.full([| 10L; 1L; 28L; 28L |], TorchSharp.Scalar.op_Implicit 7.0f)
            let capacity = TorchSharp.torch.zeros([| 10L |])
            Attribution.Models.Safetensors.Save(part, readOnlyDict [ "maps", marker; "diagnostic.capacity_bits", capacity ], readOnlyDict [ "seconds", "100" ])
            runWithCache { spec with Output = Path.Combine(root, "runs-b") } cacheB |> ignore
            let resumed, seconds = mapsIn cacheB
            Expect.isTrue (resumed.narrow(0L, 0L, 10L).eq(TorchSharp.Scalar.op_Implicit 7.0f).all().item<bool>()) "the first call came from its part"
            Expect.isTrue (resumed.narrow(0L, 10L, 14L).allclose(whole.narrow(0L, 10L, 14L), 1e-6, 1e-7)) "the other calls were computed, as in an uninterrupted run"
            Expect.isGreaterThanOrEqual seconds 100.0 "the step's seconds include the part's"
            let left = Directory.GetFiles(Path.Combine(cacheB, "attributions"), "*.part-*")
            Expect.isEmpty left "no part is left once the step is stored"
            // `plan` tells a partly stored step from a stored one and from one not begun.
            let cacheC = Path.Combine(root, "cache-c")
            Environment.SetEnvironmentVariable("ATTRIBUTION_CACHE", cacheC)
            try
                let plan = Plan.compile spec (Execute.dataHash spec)
                let stateOf () = (Cli.cacheState plan).Split('\n') |> Array.find (fun l -> l.EndsWith "attribute/iba/ground_truth")
                Expect.stringContains (stateOf ()) "to do" "nothing stored"
                Directory.CreateDirectory(Path.Combine(cacheC, "attributions")) |> ignore
                Attribution.Models.Safetensors.Save(Execute.partFile step.Hash 0 [| 0 .. 9 |], readOnlyDict [ "maps", marker ], readOnlyDict [ "seconds", "1" ])
                Expect.stringContains (stateOf ()) "partial (1 calls stored)" "one call stored"
                File.Copy(Path.Combine(cacheB, "attributions", step.Hash + ".safetensors"), Path.Combine(cacheC, "attributions", step.Hash + ".safetensors"))
                Expect.stringContains (stateOf ()) "cached" "the step stored"
            finally
                Environment.SetEnvironmentVariable("ATTRIBUTION_CACHE", null)
            Directory.Delete(root, true)
        }

        test "a tiny spec runs, writes its report, and gives the same numbers twice from scratch" {
            let root = Path.Combine(Path.GetTempPath(), $"attribution-e2e-{Guid.NewGuid():N}")
            let spec = tinySpec (Path.Combine(root, "runs"))
            let plan = Plan.compile spec (Execute.dataHash spec)
            let attributeSteps = plan.Steps |> List.filter (fun s -> s.Name.StartsWith "attribute/")
            Expect.equal attributeSteps.Length 8 "identical methods (fi_nu, fi_nu_again) share one step per target"
            let first = runWithCache spec (Path.Combine(root, "cache-a"))
            for file in [ "report.md"; "report.html"; "metrics.json"; "metrics.csv"; "certificates.csv"; "plan.txt"; "environment.json"; "spec.yaml"
                          "heatmaps-absolute.png"; "heatmaps-signed.png"; "curve-consistency.png"; "curve-accuracy_gt.png" ] do
                Expect.isTrue (File.Exists(Path.Combine(first, file))) $"{file} written"
            let report = File.ReadAllText(Path.Combine(first, "report.md"))
            Expect.stringContains report "| fi_sigma |" "the table has a row per method"
            Expect.stringContains report "Log-Sobolev certificate" "the certificate is reported"
            // the same report as a page: its tables as tables, its images from the run folder
            let html = File.ReadAllText(Path.Combine(first, "report.html"))
            Expect.stringContains html "<td>fi_sigma</td>" "the method table is an HTML table"
            Expect.stringContains html "<img src=\"heatmaps-absolute.png\"" "the heatmaps are shown from the run folder"
            Expect.stringContains html "Log-Sobolev certificate" "the same text"
            let a = numbers (metricsOf first)
            let second = runWithCache { spec with Output = Path.Combine(root, "runs2") } (Path.Combine(root, "cache-b"))
            Expect.sequenceEqual (numbers (metricsOf second)) a "same spec, fresh cache, same numbers"
            Directory.Delete(root, true)
        }

        test "steps: auto reports the points per input and says in words when inputs reached max_steps without meeting the tolerance" {
            let root = Path.Combine(Path.GetTempPath(), $"attribution-e2e-{Guid.NewGuid():N}")
            let spec =
                { tinySpec (Path.Combine(root, "runs")) with
                    Data = { Dataset = FashionMnist; Root = None; TrainLimit = Some 3000; Explain = 8; UtterancesPerWord = None }
                    Explain = { Targets = [ Predicted ]; Output = Probability; BatchSize = 64; CommonNoise = false; Precision = Fp32 }
                    Methods = [ { Id = "ig_auto"; Kind = IntegratedGradientsAuto(0.01, 1024, GaussLegendre) }
                                // the left rule's error falls as 1/n: 1e-6 of f(x) - f(0) is out of reach at 16 points
                                { Id = "ig_capped"; Kind = IntegratedGradientsAuto(1e-6, 16, RiemannLeft) } ]
                    Metrics = [] }
            let folder = runWithCache spec (Path.Combine(root, "cache"))
            let report = File.ReadAllText(Path.Combine(folder, "report.md"))
            for name in [ "quadrature_steps"; "relative_completeness_gap"; "tolerance_unmet"; "completeness_gap" ] do
                Expect.stringContains report $"| ig_auto | predicted | {name} |" $"{name} in the diagnostics table"
            Expect.stringContains report "- **`ig_capped` (predicted): 8 of 8 inputs reached max_steps 16 with the completeness gap still above the tolerance**" "the capped method is called out"
            Expect.stringContains report "- `ig_auto` (predicted): every one of 8 inputs met" "the other meets its tolerance"
            Directory.Delete(root, true)
        }

        test "common_noise: the methods draw the same noise, so SmoothGradSQ = VarGrad + SmoothGrad^2 exactly and two noise levels rank alike; off, neither" {
            let root = Path.Combine(Path.GetTempPath(), $"attribution-e2e-{Guid.NewGuid():N}")
            let sampling stdev = { Samples = 16; Sampler = IsotropicGaussian stdev }
            let spec common =
                { tinySpec (Path.Combine(root, "runs")) with
                    Data = { Dataset = FashionMnist; Root = None; TrainLimit = Some 3000; Explain = 12; UtterancesPerWord = None }
                    Explain = { Targets = [ Predicted ]; Output = Probability; BatchSize = 64; CommonNoise = common; Precision = Fp32 }
                    Methods = [ { Id = "sg"; Kind = SmoothGrad(sampling 0.15) }; { Id = "sg_016"; Kind = SmoothGrad(sampling 0.16) }
                                { Id = "sgsq"; Kind = SmoothGradSq(sampling 0.15) }; { Id = "vg"; Kind = VarGrad(sampling 0.15) } ]
                    Metrics = [ RankAgreement ] }
            Environment.SetEnvironmentVariable("ATTRIBUTION_CACHE", Path.Combine(root, "cache"))
            try
                let device = Attribution.Runtime.TorchRuntime.Resolve(Attribution.Runtime.DeviceRequest.Cpu)
                let runOf common =
                    let spec = spec common
                    Execute.run (Plan.compile spec (Execute.dataHash spec)) device
                let off, on = runOf false, runOf true
                let map (output: Execute.RunOutput) id = output.Maps.[(id, Predicted)].All().``to``(TorchSharp.torch.ScalarType.Float64)
                // E[g^2] = (E[g^2] - E[g]^2) + E[g]^2 holds for one set of draws, to float32 rounding of the stored maps
                let identityError (output: Execute.RunOutput) =
                    let sgsq = map output "sgsq"
                    let rebuilt = map output "vg" + (map output "sg").square()
                    (sgsq - rebuilt).abs().max().item<float>() / sgsq.abs().max().item<float>()
                Expect.isLessThan (identityError on) 1e-5 "common noise: SmoothGradSQ = VarGrad + SmoothGrad^2"
                Expect.isGreaterThan (identityError off) 1e-3 "a seed per method: the three draw apart"
                let agreement (output: Execute.RunOutput) =
                    output.Result.RankAgreement |> Array.find (fun p -> (p.A, p.B) = ("sg", "sg_016") || (p.A, p.B) = ("sg_016", "sg")) |> _.Spearman
                printfn $"rank agreement of SmoothGrad at stdev 0.15 and 0.16, 16 samples: {agreement off:F3} apart, {agreement on:F3} on common noise"
                Expect.isGreaterThan (agreement on) (agreement off) "common noise agrees more"
                Expect.isGreaterThan (agreement on) 0.9 "and nearly fully: the maps differ only by the noise level"
            finally
                Environment.SetEnvironmentVariable("ATTRIBUTION_CACHE", null)
            Directory.Delete(root, true)
        }

        test "ROAR end to end: per-test-input values average to its scalars, each interval holds its scalar, and a second run reads the same result back" {
            let root = Path.Combine(Path.GetTempPath(), $"attribution-e2e-{Guid.NewGuid():N}")
            let spec =
                { tinySpec (Path.Combine(root, "runs")) with
                    Data = { Dataset = FashionMnist; Root = None; TrainLimit = Some 600; Explain = 40; UtterancesPerWord = None }
                    Explain = { Targets = [ Predicted ]; Output = Probability; BatchSize = 64; CommonNoise = false; Precision = Fp32 }
                    Methods = [ { Id = "saliency"; Kind = Saliency true } ]
                    Metrics = [ Roar { Fractions = [ 0.3; 0.7 ]; TrainInputs = 120; Epochs = 1 } ] }
            let cache = Path.Combine(root, "cache")
            let roarOf () = (executeWithCache spec cache).Result.Metrics |> Array.find (fun m -> m.Metric = "roar")
            let first = roarOf ()
            let scalar name = first.Scalars |> Array.find (fun v -> v.Name = name) |> _.Value
            Expect.floatClose Accuracy.high (scalar "removed_minus_random") (scalar "mean_accuracy_removed" - scalar "mean_accuracy_random") "the difference of the two means"
            let curve name = first.Curves |> Array.find (fun c -> c.Name = name) |> _.Values
            Expect.floatClose Accuracy.high (scalar "mean_accuracy_removed") (Array.average (curve "accuracy").[1..]) "the mean over the removed fractions of the accuracy curve"
            for name in [ "accuracy_nothing_removed"; "mean_accuracy_removed"; "mean_accuracy_random"; "removed_minus_random" ] do
                let value = scalar name
                let perInput = first.PerInput |> Array.find (fun p -> p.Name = name)
                Expect.hasLength perInput.Values 40 $"{name}: one value per explained test input"
                Expect.floatClose Accuracy.high (Results.PerInputs.reduce perInput) value $"{name}: the per-input values average to it"
                let interval = first.Intervals |> Array.find (fun i -> i.Name = name)
                Expect.isTrue (interval.Low <= value && value <= interval.High && interval.Low < interval.High) $"{name}: {interval.Low} <= {value} <= {interval.High}"
            // every point is cached by now: the second run reads ROAR back, with the same numbers
            let again = roarOf ()
            Expect.equal again.Scalars first.Scalars "the same scalars from the cache"
            Expect.equal again.Intervals first.Intervals "and intervals"
            Directory.Delete(root, true)
        }

        test "a 56x56 canvas spec runs end to end: EHR against the boxes and the randomisation check on the larger model" {
            let root = Path.Combine(Path.GetTempPath(), $"attribution-e2e-{Guid.NewGuid():N}")
            let spec =
                { tinySpec (Path.Combine(root, "runs")) with
                    Data = { Dataset = FashionCanvas; Root = None; TrainLimit = Some 1000; Explain = 6; UtterancesPerWord = None }
                    Explain = { Targets = [ Predicted ]; Output = Probability; BatchSize = 64; CommonNoise = false; Precision = Fp32 }
                    Methods = [ { Id = "saliency"; Kind = Saliency true }; { Id = "grad_cam"; Kind = GradCam "conv2" } ]
                    Metrics = [ EffectiveHeatRatio; ParameterRandomisation 3 ] }
            let folder = runWithCache spec (Path.Combine(root, "cache"))
            let metrics = (metricsOf folder).RootElement.GetProperty("Metrics").EnumerateArray() |> Seq.toList
            let names = metrics |> List.map (fun m -> m.GetProperty("Metric").GetString(), m.GetProperty("Method").GetString())
            Expect.containsAll names [ "effective_heat_ratio", "saliency"; "effective_heat_ratio", "grad_cam"; "parameter_randomisation", "grad_cam" ] "every metric for every method"
            for m in metrics do
                if m.GetProperty("Metric").GetString() = "effective_heat_ratio" then
                    let ehr = m.GetProperty("Scalars").EnumerateArray() |> Seq.find (fun v -> v.GetProperty("Name").GetString() = "ehr")
                    let value = ehr.GetProperty("Value").GetDouble()
                    Expect.isTrue (value >= 0.0 && value <= 1.0) $"EHR in [0, 1] (got {value})"
                // every scalar that is a mean over the inputs has its interval, and the interval holds it
                let metric = m.GetProperty("Metric").GetString()
                let intervals = [ for i in m.GetProperty("Intervals").EnumerateArray() -> i.GetProperty("Name").GetString(), (i.GetProperty("Low").GetDouble(), i.GetProperty("High").GetDouble()) ] |> Map.ofList
                let expected = if metric = "effective_heat_ratio" then [ "ehr" ] else [ "final_ssim"; "final_spearman" ]
                for name in expected do
                    let value = m.GetProperty("Scalars").EnumerateArray() |> Seq.find (fun v -> v.GetProperty("Name").GetString() = name) |> fun v -> v.GetProperty("Value").GetDouble()
                    match intervals.TryFind name with
                    | Some(low, high) -> Expect.isTrue (low <= value && value <= high) $"{metric} {name}: {low} <= {value} <= {high}"
                    | None -> failtest $"{metric}: no interval for {name}"
            Directory.Delete(root, true)
        }

        test "a second run reuses every cached artefact and gives the same numbers" {
            let root = Path.Combine(Path.GetTempPath(), $"attribution-e2e-{Guid.NewGuid():N}")
            let spec = { tinySpec (Path.Combine(root, "runs")) with Methods = [ { Id = "saliency"; Kind = Saliency true } ] }
            let cache = Path.Combine(root, "cache")
            let first = metricsOf (runWithCache spec cache)
            let second = metricsOf (runWithCache spec cache)
            Expect.sequenceEqual (numbers second) (numbers first) "same numbers"
            let cached = second.RootElement.GetProperty("Timings").EnumerateArray() |> Seq.forall (fun t -> t.GetProperty("Cached").GetBoolean())
            Expect.isTrue cached "every attribution came from the cache"
            Directory.Delete(root, true)
        }
    ]
