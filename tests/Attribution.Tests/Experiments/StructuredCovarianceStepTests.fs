/// Class covariances in the per-channel, full and low-rank structures are plan steps like the shared one: keyed by
/// their structure and rank, estimated once into the cache and loaded by every later run, prepare job and shard.
module StructuredCovarianceStepTests

open System
open System.IO
open Expecto
open Experiments

let private covariance structure rank : SamplerSpec =
    CovarianceGaussian { Scale = 0.15; Covariance = ClassCovariance; Jitter = 1e-5; Structure = structure; Rank = rank }

let private sampling sampler = { Samples = 4; Sampler = sampler }

/// Fashion-MNIST, 500 training images, one epoch, 20 explained inputs: FI with per-channel covariances and SmoothGrad
/// with low-rank ones (rank 8), plus `extra` methods.
let private spec (output: string) (extra: MethodSpec list) : Spec =
    { Name = "structured-covariances"
      Seed = 3
      Device = Cpu
      Output = output
      Data = { Dataset = FashionMnist; Root = None; TrainLimit = Some 500; Explain = 20; UtterancesPerWord = None }
      Model = { Architecture = FashionCnn; Epochs = 1; BatchSize = 64; LearningRate = 0.002; Weights = None; Normalise = None }
      Explain = { Targets = [ GroundTruth ]; Output = Probability; BatchSize = 64; CommonNoise = false; Precision = Fp32 }
      Methods =
        [ { Id = "fi_per_channel"; Kind = FunctionalInformation(sampling (covariance PerChannel 64)) }
          { Id = "smooth_grad_low_rank"; Kind = SmoothGrad(sampling (covariance LowRank 8)) } ] @ extra
      Metrics = []
      Report = { HeatmapInputs = 0 }
      Full = { Explain = None; Epochs = None } }

let private device, withCache, planOf = TestProcesses.cpu, TestProcesses.withCache, TestProcesses.planOf

let private covarianceSteps (plan: Plan.Plan) =
    plan.Steps |> List.filter (fun s -> match s.Kind with Plan.EstimateCovariance _ | Plan.EstimateStructuredCovariance _ -> true | _ -> false)

/// Every attribution step's tensors in a cache, as raw bytes.
let private storedMaps (plan: Plan.Plan) (cache: string) =
    [ for step in plan.Steps do
        match step.Kind with
        | Plan.Attribute _ ->
            let tensors = Attribution.Models.Safetensors.Load(Path.Combine(cache, "attributions", step.Hash + ".safetensors"))
            for KeyValue(name, t) in tensors |> Seq.sortBy (fun kv -> kv.Key) do
                yield $"{step.Name}/{name}", t.contiguous().bytes.ToArray()
        | _ -> () ]

[<Tests>]
let tests =
    testSequenced <| testList "structured covariance steps" [
        test "one step per distinct jitter, structure and rank; attribution steps depend on theirs; the shared step's name and key are as before" {
            let sharedFi = { Id = "fi_shared"; Kind = FunctionalInformation(sampling (covariance SharedAcrossChannels 64)) }
            let extra =
                [ sharedFi
                  // per channel ignores the rank: the same step as fi_per_channel's
                  { Id = "vargrad_per_channel"; Kind = VarGrad(sampling (covariance PerChannel 8)) }
                  // another rank is another step
                  { Id = "fi_low_rank_16"; Kind = FunctionalInformation(sampling (covariance LowRank 16)) } ]
            let plan = Plan.compile (spec "runs" extra) "data"
            let names = covarianceSteps plan |> List.map _.Name
            Expect.equal names [ "covariance/jitter=1E-05"; "covariance/per_channel/jitter=1E-05"; "covariance/low_rank=8/jitter=1E-05"; "covariance/low_rank=16/jitter=1E-05" ] "the steps"
            Expect.equal (covarianceSteps plan |> List.map _.Hash |> List.distinct |> List.length) 4 "four keys"
            // the shared step's key as it was before the other structures had steps (existing caches stay valid)
            let shared = covarianceSteps plan |> List.head
            Expect.equal shared.Hash (Hashing.hash [ "covariance"; "data"; Hashing.canonical (Some 500); Hashing.canonical 1e-5 ]) "shared key"
            let onlyShared = Plan.compile { spec "runs" [] with Methods = [ sharedFi ] } "data"
            Expect.equal (covarianceSteps onlyShared) [ shared ] "the shared step alone, the same"
            let attribution id = plan.Steps |> List.find (fun s -> s.Name = $"attribute/{id}/ground_truth")
            Expect.equal (attribution "fi_shared").DependsOn [ "model"; "covariance/jitter=1E-05" ] "shared"
            Expect.equal (attribution "fi_shared").Hash (onlyShared.Steps |> List.find (fun s -> s.Name = "attribute/fi_shared/ground_truth")).Hash "shared method's key"
            Expect.equal (attribution "fi_per_channel").DependsOn [ "model"; "covariance/per_channel/jitter=1E-05" ] "per channel"
            Expect.equal (attribution "vargrad_per_channel").DependsOn [ "model"; "covariance/per_channel/jitter=1E-05" ] "per channel, other rank"
            Expect.equal (attribution "smooth_grad_low_rank").DependsOn [ "model"; "covariance/low_rank=8/jitter=1E-05" ] "low rank 8"
            Expect.equal (attribution "fi_low_rank_16").DependsOn [ "model"; "covariance/low_rank=16/jitter=1E-05" ] "low rank 16"
        }

        test "a second run loads the covariance steps (not estimated again) and its maps equal a fresh cache's; a shard without them says to prepare" {
            let root = Path.Combine(Path.GetTempPath(), $"attribution-structured-{Guid.NewGuid():N}")
            try
                let plan = planOf (spec (Path.Combine(root, "runs")) [])
                let steps = covarianceSteps plan
                Expect.equal (steps |> List.map _.Name) [ "covariance/per_channel/jitter=1E-05"; "covariance/low_rank=8/jitter=1E-05" ] "two structured steps"
                let cache = Path.Combine(root, "cache")
                let fileOf (step: Plan.Step) = Path.Combine(cache, "covariances", step.Hash + ".safetensors")
                withCache cache (fun () -> Execute.run plan (device ())) |> ignore
                for step in steps do Expect.isTrue (File.Exists(fileOf step)) $"{step.Name} stored"
                let first = storedMaps plan cache
                let stamps = steps |> List.map (fun s -> File.GetLastWriteTimeUtc(fileOf s), File.ReadAllBytes(fileOf s))
                // the maps go, so the second run computes them again from the covariances it finds
                Directory.Delete(Path.Combine(cache, "attributions"), true)
                let states = withCache cache (fun () -> steps |> List.map (PlanJson.cacheStateOf >> fst))
                Expect.equal states [ "cached"; "cached" ] "plan: the covariance steps are cached"
                withCache cache (fun () -> Execute.run plan (device ())) |> ignore
                // a step that estimated would have written its file again
                Expect.equal (steps |> List.map (fun s -> File.GetLastWriteTimeUtc(fileOf s), File.ReadAllBytes(fileOf s))) stamps "the covariance files were read, not written"
                let second = storedMaps plan cache
                let fresh = Path.Combine(root, "fresh")
                withCache fresh (fun () -> Execute.run plan (device ())) |> ignore
                let third = storedMaps plan fresh
                Expect.equal (second |> List.map fst) (first |> List.map fst) "the same tensors"
                for (name, a), (_, b), (_, c) in List.zip3 first second third do
                    Expect.isTrue (a = b) $"{name}: the run with cached covariances gives the same bytes"
                    Expect.isTrue (a = c) $"{name}: a fresh cache gives the same bytes"
                // a shard started with the model but before the prepare job stored the covariances
                Directory.Delete(Path.Combine(cache, "covariances"), true)
                try
                    withCache cache (fun () -> Execute.shard plan (device ()) 0 2) |> ignore
                    failtest "the shard ran without its covariances"
                with InputProblem message ->
                    Expect.stringContains message "covariance/per_channel/jitter=1E-05" "names the step"
                    Expect.stringContains message "run the prepare job first" "says what to do"
                withCache cache (fun () -> Execute.prepare plan (device ()))
                for step in steps do Expect.isTrue (File.Exists(fileOf step)) $"{step.Name} stored by the prepare job"
            finally
                if Directory.Exists root then Directory.Delete(root, true)
        }
    ]
