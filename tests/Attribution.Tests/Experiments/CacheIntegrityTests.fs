/// The cache heals itself: a truncated, garbage or edited artefact is quarantined and recomputed, and the results equal
/// a run from a clean cache; `cache verify` and `cache gc` see the whole cache; a user's weights are keyed by content;
/// bad weights and non-finite outputs end as input errors (exit 2), never as a stack trace or a NaN in a table.
module CacheIntegrityTests

open System
open System.IO
open System.Text.Json
open Expecto
open Experiments

let private spec (output: string) =
    Dsl.spec "integrity"
    |> Dsl.withSeed 5
    |> Dsl.withDevice Cpu
    |> Dsl.withOutput output
    |> Dsl.withTrainLimit 600
    |> Dsl.withExplainCount 12
    |> Dsl.withEpochs 1
    |> Dsl.withMethods [ Dsl.saliency; Dsl.smoothGrad |> Dsl.withSamples 4 ]
    |> Dsl.withMetrics [ Dsl.negativePerturbation |> Dsl.withFractions [ 0.2; 0.6 ]; Dsl.rankAgreement ]
    |> Dsl.withHeatmapInputs 2

let private withCache (cache: string) (f: unit -> 'a) =
    Environment.SetEnvironmentVariable("ATTRIBUTION_CACHE", cache)
    try f ()
    finally Environment.SetEnvironmentVariable("ATTRIBUTION_CACHE", null)

let private run (s: Spec) (cache: string) =
    withCache cache (fun () ->
        let device = Attribution.Runtime.TorchRuntime.Resolve(Attribution.Runtime.DeviceRequest.Cpu)
        let plan = Plan.compile s (Execute.dataHash s)
        let folder = Report.write plan "# integrity\n" (Execute.run plan device) (RunEnvironment.capture device DateTime.UtcNow)
        File.ReadAllText(Path.Combine(folder, "metrics.json")))

/// metrics.json without what legitimately differs between runs: timings and whether a step came from the cache.
let private numbers (metricsJson: string) =
    use doc = JsonDocument.Parse metricsJson
    let top = doc.RootElement
    [ for p in top.EnumerateObject() do
        match p.Name with
        | "Timings" -> ()
        | "Model" -> yield p.Value.GetProperty("TestAccuracy").GetRawText()
        | _ -> yield p.Name + "=" + p.Value.GetRawText() ]

let private captured (f: unit -> 'a) : 'a * string =
    let writer = new StringWriter()
    let original = Console.Error
    Console.SetError writer
    try f (), writer.ToString() finally Console.SetError original

let private filesIn (cache: string) (folder: string) = Directory.GetFiles(Path.Combine(cache, folder)) |> Array.sort

[<Tests>]
let tests =
    testSequenced <| testList "cache integrity" [
        test "truncated, emptied, garbage, bit-flipped and edited artefacts are quarantined and recomputed to the same results" {
            let root = TestFiles.freshDir "integrity"
            let cache = Path.Combine(root, "cache")
            let clean = run (spec (Path.Combine(root, "runs"))) cache |> numbers
            let maps = filesIn cache "attributions"
            let metrics = filesIn cache "metrics"
            let model = filesIn cache "models"
            Expect.equal (maps.Length, metrics.Length, model.Length) (4, 3, 2) "two methods x two targets, three metric steps, weights and info"
            // one kind of damage each
            let bytes (f: string) = File.ReadAllBytes f
            File.WriteAllBytes(maps.[0], (bytes maps.[0]).[.. (bytes maps.[0]).Length / 2])          // truncated
            File.WriteAllBytes(maps.[1], [||])                                                        // empty
            File.WriteAllBytes(maps.[2], Array.init 4096 (fun i -> byte (i * 7919 % 251)))            // garbage
            let flipped = bytes maps.[3]
            flipped.[flipped.Length - 3] <- flipped.[flipped.Length - 3] ^^^ 1uy
            File.WriteAllBytes(maps.[3], flipped)                                                     // one flipped bit
            File.WriteAllText(metrics.[0], "{ not json")                                               // garbage JSON
            // an edited number in valid JSON: the model's accuracy
            let info = model |> Array.find (fun f -> f.EndsWith ".json")
            let text = File.ReadAllText info
            let at = text.IndexOf "\"TestAccuracy\": " + "\"TestAccuracy\": ".Length
            File.WriteAllText(info, text.Substring(0, at) + "0.999" + text.Substring(text.IndexOfAny([| ','; '\n' |], at)))
            let healed, said = captured (fun () -> run (spec (Path.Combine(root, "runs"))) cache)
            Expect.equal (numbers healed) clean "the same results as from a clean cache"
            let quarantined = Directory.GetFiles(Path.Combine(cache, "quarantine"))
            Expect.equal quarantined.Length 6 $"every damaged artefact moved aside:\n{said}"
            Expect.stringContains said "is corrupt" "each reported in one line"
            let code, report = captured (fun () -> withCache cache (fun () -> Cli.run [| "cache"; "verify" |]))
            Expect.equal code ExitCode.Ok report
        }

        test "cache verify finds a damaged artefact (exit 3), --repair quarantines it; cache gc keeps what the specs need" {
            let root = TestFiles.freshDir "integrity-verify"
            let cache = Path.Combine(root, "cache")
            let s = spec (Path.Combine(root, "runs"))
            run s cache |> ignore
            let target = (filesIn cache "attributions").[0]
            let b = File.ReadAllBytes target
            b.[b.Length / 2] <- b.[b.Length / 2] ^^^ 0x10uy
            File.WriteAllBytes(target, b)
            let code, _ = captured (fun () -> withCache cache (fun () -> Cli.run [| "cache"; "verify" |]))
            Expect.equal code ExitCode.BadCache "corrupt artefacts left in place"
            let repaired, _ = captured (fun () -> withCache cache (fun () -> Cli.run [| "cache"; "verify"; "--repair" |]))
            Expect.equal repaired ExitCode.Ok "repaired"
            Expect.isFalse (File.Exists target) "moved into quarantine"
            // gc: a stray artefact goes, the spec's stay
            let specFile = Path.Combine(root, "integrity.yaml")
            File.WriteAllText(specFile, Yaml.render s)
            let stray = Path.Combine(cache, "metrics", String('a', 64) + ".json")
            Artefacts.writeJson stray [| 1 |]
            let kept = filesIn cache "models"
            let code, _ = captured (fun () -> withCache cache (fun () -> Cli.run [| "cache"; "gc"; specFile |]))
            Expect.equal code ExitCode.Ok "gc"
            Expect.isFalse (File.Exists stray) "an artefact no spec needs is removed"
            Expect.equal (filesIn cache "models") kept "the spec's model stays"
            Expect.isFalse (Directory.Exists(Path.Combine(cache, "quarantine")) && Directory.GetFiles(Path.Combine(cache, "quarantine")).Length > 0) "the quarantine is emptied"
        }

        test "weights are keyed by content: a replaced file of the same size with its mtime restored gives a new model step" {
            let root = TestFiles.freshDir "integrity-weights"
            let weights = Path.Combine(root, "model.safetensors")
            let save (seed: int64) =
                TorchSharp.torch.manual_seed seed |> ignore
                use m = new Attribution.Models.FashionCnn()
                Attribution.Models.Safetensors.SaveModule(m, weights)
            save 1L
            let s = { spec root with Model = { (spec root).Model with Weights = Some weights } }
            let hashBefore = withCache (Path.Combine(root, "cache")) (fun () -> (Plan.compile s "data").ModelHash)
            let size, mtime = FileInfo(weights).Length, File.GetLastWriteTimeUtc weights
            save 2L
            File.SetLastWriteTimeUtc(weights, mtime)
            Expect.equal (FileInfo(weights).Length, File.GetLastWriteTimeUtc weights) (size, mtime) "same size and modification time"
            let hashAfter = withCache (Path.Combine(root, "cache")) (fun () -> (Plan.compile s "data").ModelHash)
            Expect.notEqual hashAfter hashBefore "different weights, different model step"
            save 1L
            Expect.equal (withCache (Path.Combine(root, "cache")) (fun () -> (Plan.compile s "data").ModelHash)) hashBefore "the same weights again, the same step"
        }

        test "bad weights files and non-finite model outputs are input errors (exit 2) with a clear message" {
            let root = TestFiles.freshDir "integrity-bad-weights"
            let weights = Path.Combine(root, "model.safetensors")
            let specFile = Path.Combine(root, "w.yaml")
            File.WriteAllText(specFile, $"name: w\noutput: {root}/runs\ndata: {{ dataset: fashion_mnist, explain: 5, train_limit: 100 }}\nmodel: {{ architecture: fashion_cnn, weights: {weights} }}\nmethods: [ {{ method: saliency }} ]\n")
            let withState (edit: Collections.Generic.Dictionary<string, TorchSharp.torch.Tensor> -> unit) =
                TorchSharp.torch.manual_seed 3L |> ignore
                use m = new Attribution.Models.FashionCnn()
                let state = Collections.Generic.Dictionary<string, TorchSharp.torch.Tensor>()
                for KeyValue(k, v) in m.state_dict() do state.[k] <- v.detach().clone()
                edit state
                Attribution.Models.Safetensors.Save(weights, state)
            let expectInputError (needle: string) =
                let code, stderr = captured (fun () -> withCache (Path.Combine(root, "cache")) (fun () -> Cli.run [| "run"; specFile |]))
                Expect.equal code ExitCode.BadInput stderr
                Expect.stringContains stderr needle stderr
                Expect.isFalse (stderr.Contains "   at ") "no stack trace"
            let first = ref ""
            withState (fun s -> first.Value <- Seq.head s.Keys; s.[first.Value].view(-1L).[0L] <- TorchSharp.torch.tensor(nan))
            expectInputError "non-finite"
            withState (fun s -> s.Remove(first.Value) |> ignore)
            expectInputError "missing from the file"
            withState (fun _ -> ())
            File.WriteAllBytes(weights, (File.ReadAllBytes weights).[.. 200])
            expectInputError "model.weights"
            // finite weights whose outputs overflow: every weight of the last layer at the edge of float32, so any
            // positive activation sum above about 1.1 overflows a logit
            withState (fun s ->
                let last = s.Keys |> Seq.filter (fun k -> k.EndsWith "weight") |> Seq.last
                s.[last].fill_(3e38) |> ignore)
            expectInputError "outputs are not finite"
        }
    ]
