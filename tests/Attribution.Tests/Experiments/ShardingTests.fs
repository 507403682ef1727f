/// A run split into a prepare job, shards and an assembling run gives the numbers of one process, and the shard
/// options are checked before any work.
module ShardingTests

open System
open System.IO
open Expecto
open FsCheck
open TorchSharp
open Experiments

/// A small spec whose attribution steps are several calls of 50 inputs: saliency, SmoothGrad and FI with the class
/// covariance (so the prepare job has a covariance to store), both targets (the predicted class's step copies the
/// ground-truth maps and computes only the misclassified inputs), and two metrics.
let private spec (output: string) : Spec =
    let sampling sampler = { Samples = 4; Sampler = sampler }
    { Name = "sharded"
      Seed = 5
      Device = Cpu
      Output = output
      Data = { Dataset = FashionMnist; Root = None; TrainLimit = Some 2000; Explain = 180; UtterancesPerWord = None }
      Model = { Architecture = FashionCnn; Epochs = 1; BatchSize = 64; LearningRate = 0.002; Weights = None; Normalise = None }
      Explain = { Targets = [ GroundTruth; Predicted ]; Output = Probability; BatchSize = 64; CommonNoise = false; Precision = Fp32 }
      Methods =
        [ { Id = "saliency"; Kind = Saliency true }
          { Id = "smooth_grad"; Kind = SmoothGrad(sampling (IsotropicGaussian 0.1)) }
          { Id = "fi_sigma"; Kind = FunctionalInformation(sampling (CovarianceGaussian { Scale = 0.15; Covariance = ClassCovariance; Jitter = 1e-5; Structure = SharedAcrossChannels; Rank = 64 })) } ]
      Metrics = [ NegativePerturbation { Fractions = [ 0.1; 0.5; 0.9 ]; MaskValue = 0.0 }; RankAgreement ]
      Report = { HeatmapInputs = 2 }
      Full = { Explain = None; Epochs = None } }

let private device, withCache, planOf = TestProcesses.cpu, TestProcesses.withCache, TestProcesses.planOf

/// A small ROAR spec: its training subset is explained in several calls of 50 inputs, which shards share out.
let private roarSpec (output: string) : Spec =
    { spec output with
        Name = "sharded-roar"
        Data = { Dataset = FashionMnist; Root = None; TrainLimit = Some 2000; Explain = 60; UtterancesPerWord = None }
        Explain = { Targets = [ Predicted ]; Output = Probability; BatchSize = 64; CommonNoise = false; Precision = Fp32 }
        Methods = [ { Id = "saliency"; Kind = Saliency true } ]
        Metrics = [ Roar { Fractions = [ 0.5 ]; TrainInputs = 160; Epochs = 1 } ] }

/// A spec whose metrics split into blocks of inputs: 1,100 inputs, so that negative perturbation (blocks of 1,024),
/// insertion/deletion (1,023 here) and Sensitivity-N (1,024) each have two blocks, and the second block of negative
/// perturbation's and insertion/deletion's passes starts its tie-breaks past the first's.
let private blocksSpec (output: string) : Spec =
    { spec output with
        Name = "sharded-blocks"
        Data = { Dataset = FashionMnist; Root = None; TrainLimit = Some 2000; Explain = 1100; UtterancesPerWord = None }
        Explain = { Targets = [ Predicted ]; Output = Probability; BatchSize = 64; CommonNoise = false; Precision = Fp32 }
        Methods = [ { Id = "saliency"; Kind = Saliency true } ]
        Metrics = [ NegativePerturbation { Fractions = [ 0.3; 0.6 ]; MaskValue = 0.0 }; InsertionDeletion(392, 20.0); SensitivityN(2, 3) ] }

/// A spec with the parameter-randomisation check on the first 60 of 70 inputs, whose SmoothGrad cascade runs in blocks
/// of the method's call, 50 inputs (50, 10), and Taylor fidelity on the first 3, an input a block; each input draws
/// its noise by its position.
let private cascadeSpec (output: string) : Spec =
    { spec output with
        Name = "sharded-cascade"
        Data = { Dataset = FashionMnist; Root = None; TrainLimit = Some 2000; Explain = 70; UtterancesPerWord = None }
        Explain = { Targets = [ Predicted ]; Output = Probability; BatchSize = 64; CommonNoise = false; Precision = Fp32 }
        Methods = [ { Id = "smooth_grad"; Kind = SmoothGrad { Samples = 4; Sampler = IsotropicGaussian 0.1 } } ]
        Metrics = [ ParameterRandomisation 60; TaylorFidelity 3 ] }

/// The ROAR step of a plan and its parameters.
let private roarStepOf (plan: Plan.Plan) =
    plan.Steps |> List.pick (fun st -> match st.Kind with Plan.EvaluateMethodMetric(Roar r) -> Some(st, r) | _ -> None)

/// A run's ROAR result.
let private roarOf (output: Running.RunOutput) = output.Result.Metrics |> Array.find (fun m -> m.Metric = "roar")

/// A metric result as JSON text, for byte comparison (ROAR's curves have no AUC, NaN, which JSON writes only as a
/// named literal).
let private json (m: Results.MetricResult) =
    System.Text.Json.JsonSerializer.Serialize(m, System.Text.Json.JsonSerializerOptions(NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals))

/// The cache files of the roarSpec's 3 points: nothing removed, the method's and the random ranking's at 0.5.
let private roarPointFiles (plan: Plan.Plan) (cache: string) =
    let step, r = roarStepOf plan
    [ for fraction, ranking in [ 0.0, []; 0.5, [ step.Hash ]; 0.5, [ "random" ] ] ->
        Path.Combine(cache, "metrics", Plan.roarPointKey plan r fraction ranking + ".json") ]

/// The maps and diagnostics of every attribution step in a cache, by step name, as raw bytes per tensor.
let private storedMaps (plan: Plan.Plan) (cache: string) =
    [ for step in plan.Steps do
        match step.Kind with
        | Plan.Attribute _ ->
            let file = Path.Combine(cache, "attributions", step.Hash + ".safetensors")
            let tensors = Attribution.Models.Safetensors.Load file
            for KeyValue(name, t) in tensors |> Seq.sortBy (fun kv -> kv.Key) do
                yield $"{step.Name}/{name}", (t.shape, t.contiguous().bytes.ToArray())
        | _ -> () ]

[<Tests>]
let tests =
    testSequenced <| testList "sharding" [
        testProperty "--shard I/N is read for every 0 <= I < N and refused, naming the range, otherwise" <| fun (PositiveInt n) (i: int) ->
            let n = 1 + n % 1000
            match Sharding.parseShare $"{i}/{n}" with
            | Ok(index, count) -> i >= 0 && i < n && index = i && count = n
            | Error message -> (i < 0 || i >= n) && message.Contains $"between 0 and {n - 1}"

        test "--shard 5/4, --shard 0/0, text and --prepare with --shard are errors" {
            match Sharding.parseShare "5/4" with
            | Error message -> Expect.stringContains message "between 0 and 3" "5/4 names the range"
            | Ok share -> failtest $"5/4 was read as {share}"
            Expect.isError (Sharding.parseShare "0/0") "no shards"
            Expect.isError (Sharding.parseShare "a/4") "not a number"
            Expect.isError (Sharding.parseShare "1") "no count"
            Expect.isError (Sharding.modeOf true false (Some "0/2")) "prepare and shard"
            Expect.isError (Sharding.modeOf false true (Some "0/2")) "maps and shard"
            Expect.isError (Sharding.modeOf true true None) "prepare and maps"
            Expect.equal (Sharding.modeOf false true None) (Ok Sharding.MapsOnly) "the maps job"
            Expect.equal (Sharding.modeOf false false None) (Ok Sharding.Whole) "plain run"
        }

        // Largest first to the least loaded keeps the spread of the loads within the larger of the largest block and the
        // spread the shards started with (their attribution calls' inputs).
        testProperty "metric blocks are dealt to every shard in range, the loads differing by at most the largest block or the initial spread" <| fun (sizes: PositiveInt list) (PositiveInt shards) (starts: NonNegativeInt list) ->
            let count = 1 + shards % 9
            let initial = Array.init count (fun i -> match List.tryItem i starts with Some(NonNegativeInt s) -> int64 (s % 3000) | None -> 0L)
            let passes : MetricRuns.MetricBlocks.SharedPass list =
                [ { Blocks = sizes |> List.mapi (fun i (PositiveInt n) -> $"block-{i}", 1 + n % 2000); Share = fun _ -> 0, 0 } ]
            let dealt = MetricRuns.MetricBlocks.deal passes count initial
            let blocks = passes.Head.Blocks
            let load shard = initial.[shard] + (blocks |> List.sumBy (fun (key, n) -> if dealt.[key] = shard then int64 n else 0L))
            let loads = [ for shard in 0 .. count - 1 -> load shard ]
            let largest = if blocks.IsEmpty then 0L else blocks |> List.map (snd >> int64) |> List.max
            dealt.Count = blocks.Length
            && (dealt |> Map.forall (fun _ shard -> shard >= 0 && shard < count))
            && List.max loads - List.min loads <= max largest (Array.max initial - Array.min initial)

        test "a metric's blocks are parts: after a crash in the third block a re-run computes only that block, with one pass's tie-breaks" {
            let root = Path.Combine(Path.GetTempPath(), $"attribution-blocks-{Guid.NewGuid():N}")
            // 10 inputs' maps, blocks of 4 (0-3, 4-7, 8-9); a block's result is its tie-breaking draws, 3 an input
            let mapsFile = Path.Combine(root, "maps.safetensors")
            Directory.CreateDirectory root |> ignore
            Attribution.Models.Safetensors.Save(mapsFile, readOnlyDict [ "maps", TorchSharp.torch.rand(10L, 3L) ])
            let source : MetricRuns.MetricBlocks.Source = MetricRuns.MetricBlocks.storedSource "step" "test" 23L (StoredMaps mapsFile)
            let computed = Collections.Generic.List<int>()
            let pass (failAt: int option) : MetricRuns.MetricBlocks.Pass<float[][]> =
                let write, read = MetricRuns.MetricBlocks.json id id
                { Name = "draws"; Size = 4; Inputs = None; TieBreakSlots = 3L; ReadsMaps = true; Write = write; Read = read
                  Compute =
                    fun first n _ tieBreak ->
                        if Some first = failAt then failwith "killed"
                        computed.Add first
                        let draws = TorchSharp.torch.rand([| int64 n; 3L |], generator = tieBreak).``to``(TorchSharp.torch.ScalarType.Float64)
                        draws.data<float>().ToArray() |> Array.chunkBySize 3 }
            let uninterrupted = withCache (Path.Combine(root, "one-pass")) (fun () -> MetricRuns.MetricBlocks.over source (pass None))
            let resumed =
                withCache (Path.Combine(root, "crashed")) (fun () ->
                    Expect.throws (fun () -> MetricRuns.MetricBlocks.over source (pass (Some 8)) |> ignore) "the crash"
                    Expect.equal (MetricRuns.MetricBlocks.partsOf "step" |> List.length) 2 "the two blocks before it are stored"
                    computed.Clear()
                    MetricRuns.MetricBlocks.over source (pass None))
            Expect.equal (List.ofSeq computed) [ 8 ] "only the third block is computed again"
            Expect.equal resumed uninterrupted "every input's draws are one pass's"
            // a pass over the first 6 inputs only: blocks 0-3 and 4-5, the same draws as the whole pass's first 6
            let firstSix = withCache (Path.Combine(root, "first-six")) (fun () -> MetricRuns.MetricBlocks.over source { pass None with Inputs = Some 6 })
            Expect.equal (firstSix |> Array.map Array.length) [| 4; 2 |] "two blocks, the second cut at the sixth input"
            Expect.equal (Array.concat firstSix) (Array.concat uninterrupted |> Array.take 6) "the whole pass's first 6 inputs"
            Directory.Delete(root, true)
        }

        test "a shard started before the prepare job says to run the prepare job first, and computes nothing" {
            let root = Path.Combine(Path.GetTempPath(), $"attribution-shard-{Guid.NewGuid():N}")
            let cache = Path.Combine(root, "cache")
            try
                withCache cache (fun () -> Execute.shard (planOf (spec (Path.Combine(root, "runs")))) (device ()) 0 2) |> ignore
                failtest "the shard ran without a model"
            with InputProblem message -> Expect.stringContains message "run the prepare job first" "says what to do"
            Expect.isFalse (Directory.Exists(Path.Combine(cache, "attributions"))) "no part was written"
            if Directory.Exists root then Directory.Delete(root, true)
        }

        test "prepare, 4 shards and an assembling run give the maps and metrics of one process, byte for byte; a lost part is recomputed alone" {
            let root = Path.Combine(Path.GetTempPath(), $"attribution-shard-{Guid.NewGuid():N}")
            // the same spec written to two run folders (the output folder is not part of any step's key)
            let plan = planOf (spec (Path.Combine(root, "runs-whole")))
            let assemblingPlan = planOf (spec (Path.Combine(root, "runs-sharded")))
            let runAndReport (p: Plan.Plan) = let output = Execute.run p (device ()) in Report.write p "# sharded\n" output (RunEnvironment.capture (device ()) DateTime.UtcNow)
            let whole = Path.Combine(root, "whole")
            let wholeFolder = withCache whole (fun () -> runAndReport plan)
            let sharded = Path.Combine(root, "sharded")
            let shardResults =
                withCache sharded (fun () ->
                    Execute.prepare plan (device ())
                    [ for i in 0 .. 3 -> Execute.shard plan (device ()) i 4 ])
            // the ground-truth steps are 4 calls (180 inputs in calls of 50): each shard computes one of each
            Expect.isTrue (shardResults |> List.forall (fun (computed, stored) -> computed >= 3 && stored = 0)) $"every shard computed its calls: {shardResults}"
            let partsBefore = Directory.GetFiles(Path.Combine(sharded, "attributions"), "*.part-*")
            Expect.isTrue (partsBefore.Length >= 12) "the shards' parts are in the cache"
            // a shard killed in a call: that call's part is missing; its re-run computes that call only
            File.Delete partsBefore.[0]
            let rerun = withCache sharded (fun () -> [ for i in 0 .. 3 -> Execute.shard plan (device ()) i 4 ])
            Expect.equal (rerun |> List.sumBy fst) 1 "only the lost call is recomputed"
            Expect.equal (rerun |> List.sumBy snd) (partsBefore.Length - 1) "the others are found stored"
            // plan --json: between the shards and the assembling run, the attribution steps are partial, the model cached
            let planned = withCache sharded (fun () -> System.Text.Json.JsonDocument.Parse(PlanJson.render plan))
            let steps = [ for st in planned.RootElement.GetProperty("steps").EnumerateArray() -> st ]
            Expect.equal (steps |> List.map (fun st -> st.GetProperty("hash").GetString())) (plan.Steps |> List.map (fun st -> st.Hash)) "every step, with its hash, in order"
            for st in steps do
                let expected =
                    match st.GetProperty("kind").GetString() with
                    | "model" | "covariance" -> "cached"
                    | "attribution" -> "partial"
                    | _ -> "to do"
                Expect.equal (string (st.GetProperty("cache").GetString())) expected (string (st.GetProperty("name").GetString()))
            Expect.equal (steps |> List.sumBy (fun st -> st.GetProperty("parts_stored").GetInt32())) partsBefore.Length "every part counted"
            let assembledFolder = withCache sharded (fun () -> runAndReport assemblingPlan)
            Expect.isEmpty (Directory.GetFiles(Path.Combine(sharded, "attributions"), "*.part-*")) "the assembling run removed the parts"
            let a, b = storedMaps plan whole, storedMaps plan sharded
            Expect.equal (a |> List.map fst) (b |> List.map fst) "the same steps and tensors"
            for (name, (shapeA, bytesA)), (_, (shapeB, bytesB)) in List.zip a b do
                Expect.equal shapeB shapeA $"{name}: shape"
                Expect.isTrue (bytesA = bytesB) $"{name}: identical bytes"
            Expect.notEqual assembledFolder wholeFolder "two run folders"
            for file in [ "metrics.csv"; "inputs.csv"; "certificates.csv" ] do
                Expect.isTrue (File.Exists(Path.Combine(wholeFolder, file))) $"{file} written"
                Expect.equal (File.ReadAllText(Path.Combine(assembledFolder, file))) (File.ReadAllText(Path.Combine(wholeFolder, file))) $"{file} identical"
            Directory.Delete(root, true)
        }

        test "ROAR's training maps are shared out by the shards, and so are its points once the maps are stored; the result is one process's, byte for byte" {
            let root = Path.Combine(Path.GetTempPath(), $"attribution-shard-{Guid.NewGuid():N}")
            let plan = planOf (roarSpec (Path.Combine(root, "runs-whole")))
            let roarStep, _ = roarStepOf plan
            let trainMaps (cache: string) = Path.Combine(cache, "attributions", Plan.roarTrainMapsKey roarStep + ".safetensors")
            let trainParts (cache: string) = Directory.GetFiles(Path.Combine(cache, "attributions"), Plan.roarTrainMapsKey roarStep + ".part-*")
            let whole = Path.Combine(root, "whole")
            let wholeRoar = withCache whole (fun () -> roarOf (Execute.run plan (device ())))
            let sharded = Path.Combine(root, "sharded")
            let shardResults =
                withCache sharded (fun () ->
                    Execute.prepare plan (device ())
                    [ for i in 0 .. 1 -> Execute.shard plan (device ()) i 2 ])
            // 160 training inputs in calls of 50 are 4 calls, 60 test inputs 2: each shard computes 2 + 1
            Expect.equal (shardResults |> List.map fst) [ 3; 3 ] $"calls computed by each shard: {shardResults}"
            Expect.equal (trainParts sharded).Length 4 "the training maps' calls are parts in the cache"
            Expect.isFalse (File.Exists(trainMaps sharded)) "no shard assembles the training maps"
            // plan --json shows them partial, with their parts, between the shards and the assembling run
            let planned = withCache sharded (fun () -> System.Text.Json.JsonDocument.Parse(PlanJson.render plan))
            let roarJson = planned.RootElement.GetProperty("steps").EnumerateArray() |> Seq.find (fun st -> st.GetProperty("kind").GetString() = "roar")
            let maps = roarJson.GetProperty("training_maps")
            Expect.equal (string (maps.GetProperty("cache").GetString())) "partial" "ROAR's training maps are partial"
            Expect.equal (maps.GetProperty("parts_stored").GetInt32()) 4 "with their 4 parts"
            Expect.equal (maps.GetProperty("calls").GetInt32()) 4 "of 4 calls"
            let shardedRoar = withCache sharded (fun () -> roarOf (Execute.run plan (device ())))
            Expect.isEmpty (trainParts sharded) "the assembling run used and removed the parts"
            let bytes (file: string) = [ for KeyValue(name, t) in Attribution.Models.Safetensors.Load file |> Seq.sortBy (fun kv -> kv.Key) -> name, t.contiguous().bytes.ToArray() ]
            Expect.isTrue (bytes (trainMaps sharded) = bytes (trainMaps whole)) "the training maps are one process's, byte for byte"
            Expect.equal (json shardedRoar) (json wholeRoar) "ROAR's points, scalars, intervals and per-input values are one process's"
            // With the maps stored whole (a re-run, e.g. with ROAR added), the shards share out ROAR's points as well:
            // nothing removed, the method's and the random ranking's point at 0.5, dealt in turn to the 2 shards.
            let pointFiles = roarPointFiles plan sharded
            Expect.isTrue (pointFiles |> List.forall File.Exists) "the assembling run stored the 3 points"
            for file in Path.Combine(sharded, "metrics", roarStep.Hash + ".json") :: pointFiles do File.Delete file
            let pointShares = withCache sharded (fun () -> [ for i in 0 .. 1 -> Execute.shard plan (device ()) i 2 ])
            Expect.equal (pointShares |> List.map fst) [ 2; 1 ] $"points computed by each shard: {pointShares}"
            Expect.isTrue (pointFiles |> List.forall File.Exists) "the shards stored every point"
            let fromPointShards = withCache sharded (fun () -> roarOf (Execute.run plan (device ())))
            Expect.equal (json fromPointShards) (json wholeRoar) "the points of the shards give one process's ROAR"
            Directory.Delete(root, true)
        }

        test "a second wave of shards shares out the blocks of negative perturbation, insertion/deletion and Sensitivity-N; the assembling run reads them and gives one process's numbers" {
            let root = Path.Combine(Path.GetTempPath(), $"attribution-shard-{Guid.NewGuid():N}")
            let plan = planOf (blocksSpec (Path.Combine(root, "runs")))
            let metricsOf (output: Running.RunOutput) =
                Array.append (output.Result.Metrics |> Array.map json) (output.Result.NegativePerturbation |> Array.map System.Text.Json.JsonSerializer.Serialize)
            let whole = withCache (Path.Combine(root, "whole")) (fun () -> metricsOf (Execute.run plan (device ())))
            let sharded = Path.Combine(root, "sharded")
            // the trained model copied over (training it is not what this test is about)
            for file in Directory.GetFiles(Path.Combine(root, "whole", "models")) do
                Directory.CreateDirectory(Path.Combine(sharded, "models")) |> ignore
                File.Copy(file, Path.Combine(sharded, "models", Path.GetFileName file |> string))
            let parts (cache: string) = Directory.GetFiles(Path.Combine(cache, "metrics"), "*.block-*") |> Array.map (Path.GetFileName >> string) |> Array.sort
            withCache sharded (fun () ->
                Execute.prepare plan (device ())
                for i in 0 .. 1 do Execute.shard plan (device ()) i 2 |> ignore
                Expect.isFalse (Directory.Exists(Path.Combine(sharded, "metrics"))) "the first wave computes no block (the maps are parts)"
                Execute.maps plan (device ()) |> ignore
                let secondWave = [ for i in 0 .. 1 -> Execute.shard plan (device ()) i 2 ]
                // 8 blocks: negative perturbation's (predicted class), insertion/deletion's black and blurred rounds and
                // Sensitivity-N's pass, two blocks each. Largest first to the shard with fewer inputs (the lower on a tie):
                // 1,024 and 1,024 to shards 0 and 1, 1,023 and 1,023 likewise, then 77, 77, 76, 76 in turn: 2,200 inputs each
                Expect.equal (secondWave |> List.map fst) [ 4; 4 ] $"the 8 blocks dealt by inputs: {secondWave}"
                Expect.equal (parts sharded).Length 8 "8 parts stored"
                // plan --json: the metric steps partial, with their blocks
                let planned = System.Text.Json.JsonDocument.Parse(PlanJson.render plan)
                let metricSteps =
                    [ for st in planned.RootElement.GetProperty("steps").EnumerateArray() do
                        match string (st.GetProperty("kind").GetString()) with
                        | "negative_perturbation" | "insertion_deletion" | "sensitivity_n" as kind -> yield kind, string (st.GetProperty("cache").GetString()), st.GetProperty("parts_stored").GetInt32()
                        | _ -> () ]
                Expect.equal (List.sort metricSteps) [ "insertion_deletion", "partial", 4; "negative_perturbation", "partial", 2; "sensitivity_n", "partial", 2 ] "the metrics' blocks in plan --json"
                Expect.equal ([ for i in 0 .. 1 -> Execute.shard plan (device ()) i 2 ] |> List.map fst) [ 0; 0 ] "a re-run shard finds its blocks stored")
            // a copy of the cache with one block's part replaced by impossible (sealed) values: the assembling run reads parts
            let tampered = Path.Combine(root, "tampered")
            for file in Directory.GetFiles(sharded, "*", SearchOption.AllDirectories) do
                let target = Path.Combine(tampered, Path.GetRelativePath(sharded, file))
                Directory.CreateDirectory(Path.GetDirectoryName target |> string) |> ignore
                File.Copy(file, target)
            let black = parts tampered |> Array.find (fun f -> f.Contains ".black.block-0-")
            withCache tampered (fun () ->
                let file = Path.Combine(tampered, "metrics", black)
                let part = (Artefacts.tryJson<MetricRuns.InsertionDeletion.GamesPart> file).Value
                Artefacts.writeJson file { part with DeletionAuc = part.DeletionAuc |> Array.map (fun _ -> 5.0) })
            let fromTampered = withCache tampered (fun () -> Execute.run plan (device ()))
            let deletionBlack = fromTampered.Result.Metrics |> Array.pick (fun m -> m.Scalars |> Array.tryFind (fun v -> v.Name = "deletion_black"))
            // an AUC of a probability is at most 1; 5 in 1,017 of the 1,100 inputs puts the mean above 4.6
            Expect.isTrue (deletionBlack.Value > 4.6) $"deletion_black {deletionBlack.Value} is made of the stored block's values"
            // the assembling run on the shards' cache: one process's numbers, and the parts gone once the results are stored
            let fromShards = withCache sharded (fun () -> metricsOf (Execute.run plan (device ())))
            Expect.equal fromShards whole "one process's metrics, byte for byte"
            Expect.isEmpty (parts sharded) "no part left once the metrics are stored"
            Directory.Delete(root, true)
        }

        test "the first wave of shards shares out the parameter-randomisation cascade and Taylor fidelity a block of inputs at a time; the results are one process's, and those of one call over all the inputs" {
            let root = Path.Combine(Path.GetTempPath(), $"attribution-shard-{Guid.NewGuid():N}")
            let plan = planOf (cascadeSpec (Path.Combine(root, "runs")))
            let metricOf (name: string) (output: Running.RunOutput) = output.Result.Metrics |> Array.find (fun m -> m.Metric = name)
            let cascadeOf, taylorOf = metricOf "parameter_randomisation", metricOf "taylor_fidelity"
            let wholeCache, sharded = Path.Combine(root, "whole"), Path.Combine(root, "sharded")
            let wholeRun = withCache wholeCache (fun () -> Execute.run plan (device ()))
            let whole, wholeTaylor = cascadeOf wholeRun, taylorOf wholeRun
            for file in Directory.GetFiles(Path.Combine(wholeCache, "models")) do
                Directory.CreateDirectory(Path.Combine(sharded, "models")) |> ignore
                File.Copy(file, Path.Combine(sharded, "models", Path.GetFileName file |> string))
            let parts () = Directory.GetFiles(Path.Combine(sharded, "metrics"), "*.block-*") |> Array.map (Path.GetFileName >> string) |> Array.sort
            withCache sharded (fun () ->
                Execute.prepare plan (device ())
                // One wave, before any maps are stored whole: each shard computes one of SmoothGrad's 2 calls (50 and 20
                // inputs) and its share of the blocks (they read no stored maps). The cascade's blocks of 50 and 10 inputs
                // and Taylor's 3 of 1 go largest first to the shard with fewer inputs, its call's included: 50 to
                // shard 1 (20 inputs so far), the rest to shard 0.
                Expect.equal ([ for i in 0 .. 1 -> Execute.shard plan (device ()) i 2 ] |> List.map fst) [ 5; 2 ] "a call each, and the 5 blocks dealt by inputs, calls included"
                Expect.isFalse (File.Exists(Path.Combine(sharded, "attributions", (plan.Steps |> List.find (fun st -> st.Name.StartsWith "attribute")).Hash + ".safetensors")))
                    "no maps stored whole: no maps job ran"
                let hashOf (name: string) = (plan.Steps |> List.find (fun st -> st.Name.StartsWith name)).Hash
                let expected =
                    [| for first, n in [ 0, 50; 50, 10 ] -> $"""{hashOf "parameter_randomisation"}.cascade.block-{first}-{n}.json"""
                       for first in 0 .. 2 -> $"""{hashOf "taylor_fidelity"}.taylor.block-{first}-1.json""" |]
                Expect.equal (parts ()) (Array.sort expected) "a part per block")
            let assembled = withCache sharded (fun () -> Execute.run plan (device ()))
            Expect.equal (json (cascadeOf assembled)) (json whole) "one process's cascade, byte for byte"
            Expect.equal (json (taylorOf assembled)) (json wholeTaylor) "one process's Taylor fidelity, byte for byte"
            Expect.isEmpty (parts ()) "no part left once the result is stored"
            // The cascade over the 60 inputs in one call, as the metric ran before it was split: the same numbers (the
            // blocks draw each input's noise by its position, as one call does), up to the order of float sums
            let atOnce =
                withCache wholeCache (fun () ->
                    let domain = DataSources.load plan.Spec
                    let network = (Execute.loadNetwork plan domain (device ())).Value
                    let model = domain.Explained network
                    let inputs = (domain.Inputs network false (wholeRun.Result.ExplainedIndices |> Array.take 60))
                    use targets = torch.tensor(wholeRun.Predictions |> Array.take 60)
                    let shape = inputs.shape |> Array.skip 1
                    let view (m: torch.nn.Module<torch.Tensor, torch.Tensor>) = new Attribution.Models.ReshapedModel(m, shape, shape)
                    let kind = (plan.Spec.Methods |> List.head).Kind
                    Attribution.Metrics.ParameterRandomisation().Run<Attribution.Models.ReshapedModel>(
                        view model, (fun () -> view (domain.NewModel())), Attribution.Methods.Presets.SmoothGrad(Attribution.Sampling.IsotropicGaussian(0.1), 4),
                        inputs, targets, AttributionSteps.optionsOf plan kind, Attribution.Runtime.Seeds.Derive(int64 plan.Spec.Seed, Catalogue.metricName (ParameterRandomisation 60)))
                    |> Seq.toArray,
                    let three = inputs.narrow(0L, 0L, 3L)
                    use threeTargets = targets.narrow(0L, 0L, 3L)
                    use report = Attribution.Metrics.TaylorFidelity.Assess(Attribution.Methods.Presets.SmoothGrad(Attribution.Sampling.IsotropicGaussian(0.1), 4), model, three,
                                                                           threeTargets, AttributionSteps.optionsOf plan kind)
                    report.ApproximationError.``to``(torch.ScalarType.Float64).data<float>().ToArray())
            for stage in fst atOnce do
                let perInput = whole.PerInput |> Array.find (fun p -> p.Name = $"ssim/{stage.Stage}")
                for i in 0 .. 59 do
                    Expect.floatClose { absolute = 1e-6; relative = 1e-6 } perInput.Values.[i] stage.Ssim.[i] $"{stage.Stage}, input {i}: SSIM as at once"
            let approximation = wholeTaylor.PerInput |> Array.find (fun p -> p.Name = "approximation_error")
            for i in 0 .. 2 do
                Expect.floatClose { absolute = 1e-9; relative = 1e-5 } approximation.Values.[i] (snd atOnce).[i] $"input {i}: Taylor's approximation error as at once"
            Directory.Delete(root, true)
        }

        test "a maps job between two waves of shards lets the second wave share out ROAR's points on a first run, with one process's result" {
            let root = Path.Combine(Path.GetTempPath(), $"attribution-shard-{Guid.NewGuid():N}")
            let plan = planOf (roarSpec (Path.Combine(root, "runs")))
            let roarStep, _ = roarStepOf plan
            let wholeRoar = withCache (Path.Combine(root, "whole")) (fun () -> roarOf (Execute.run plan (device ())))
            let sharded = Path.Combine(root, "sharded")
            let pointFiles = roarPointFiles plan sharded
            withCache sharded (fun () ->
                Execute.prepare plan (device ())
                let firstWave = [ for i in 0 .. 1 -> Execute.shard plan (device ()) i 2 ]
                Expect.isFalse (pointFiles |> List.exists File.Exists) $"the first wave computes no point (the maps are parts): {firstWave}"
                let stored = Execute.maps plan (device ())
                Expect.equal stored 2 "the maps job stores the attribution step and ROAR's training maps whole"
                Expect.isTrue (File.Exists(Path.Combine(sharded, "attributions", Plan.roarTrainMapsKey roarStep + ".safetensors"))) "ROAR's training maps stored whole"
                Expect.isEmpty (Directory.GetFiles(Path.Combine(sharded, "attributions"), "*.part-*")) "no part left"
                let secondWave = [ for i in 0 .. 1 -> Execute.shard plan (device ()) i 2 ]
                Expect.equal (secondWave |> List.map fst) [ 2; 1 ] $"the second wave computes the 3 points: {secondWave}")
            let shardedRoar = withCache sharded (fun () -> roarOf (Execute.run plan (device ())))
            Expect.equal (json shardedRoar) (json wholeRoar) "one process's ROAR, byte for byte"
            Directory.Delete(root, true)
        }
    ]
