/// The plan: shipped specs validate, YAML and F# values compile to the same plan, hashes are precise.
module PlanTests

open System.IO
open Expecto
open Experiments

let private repoRoot = TestProcesses.repoRoot

let private dataHash = "fixed-data-hash"   // plans are compared for one dataset; the files' hash is tested elsewhere

let private quickstartAsFSharp =
    Dsl.spec "quickstart"
    |> Dsl.withSeed 7
    |> Dsl.withExplainCount 100
    |> Dsl.withEpochs 8
    |> Dsl.withMethods
        [ Dsl.saliency
          Dsl.integratedGradients |> Dsl.withSteps 32
          Dsl.smoothGrad |> Dsl.withSamples 100
          Dsl.functionalInformation |> Dsl.withId "fi_nu" |> Dsl.withSamples 256 |> Dsl.withSampler (IsotropicGaussian 0.15)
          Dsl.functionalInformation |> Dsl.withId "fi_sigma" |> Dsl.withSamples 32 ]
    |> Dsl.withHeatmapInputs 6

let private hashes (plan: Plan.Plan) = plan.Steps |> List.map (fun s -> s.Name, s.Hash) |> Map.ofList

[<Tests>]
let tests =
    testList "plan" [
        test "every shipped spec in experiments/ is valid" {
            let specs = Directory.GetFiles(Path.Combine(repoRoot, "experiments"), "*.yaml")
            Expect.isNonEmpty specs "there are shipped specs"
            for file in specs do
                let text = File.ReadAllText file
                for document in SpecFiles.documents text do
                    match Yaml.parseText file document with
                    | Ok spec ->
                        Expect.isEmpty (Validate.spec spec) $"{file} passes validation"
                        Expect.isEmpty (SpecFiles.compositionErrors file document spec) $"{file}: its methods and metrics fit its data and model"
                    | Error errors -> failtest (SpecError.formatAll errors)
        }

        test "the quickstart as YAML and as F# values compiles to the same plan" {
            match Yaml.parseFile (Path.Combine(repoRoot, "experiments", "quickstart.yaml")) with
            | Error errors -> failtest (SpecError.formatAll errors)
            | Ok fromYaml ->
                Expect.equal (Plan.compile quickstartAsFSharp dataHash).Steps (Plan.compile fromYaml dataHash).Steps "same steps, same hashes"
        }

        test "changing one method's parameter changes only that method's steps" {
            let before = hashes (Plan.compile quickstartAsFSharp dataHash)
            let changed =
                { quickstartAsFSharp with
                    Methods = quickstartAsFSharp.Methods |> List.map (fun m -> if m.Id = "smooth_grad" then m |> Dsl.withSamples 33 else m) }
            let after = hashes (Plan.compile changed dataHash)
            let differing = before |> Map.filter (fun name h -> after.[name] <> h) |> Map.keys |> List.ofSeq |> List.sort
            Expect.equal differing [ "attribute/smooth_grad/ground_truth"; "attribute/smooth_grad/predicted"; "negative_perturbation/smooth_grad"; "rank_agreement" ] "only smooth_grad's work (and the agreement that reads it)"
        }

        test "another dataset changes every step; another seed every step but the covariance (a deterministic estimate)" {
            let before = hashes (Plan.compile quickstartAsFSharp dataHash)
            let reseeded = hashes (Plan.compile (quickstartAsFSharp |> Dsl.withSeed 8) dataHash)
            let otherData = hashes (Plan.compile quickstartAsFSharp "other-data")
            for KeyValue(name, h) in before do
                if name.StartsWith "covariance/" then Expect.equal reseeded.[name] h $"{name} does not depend on the seed"
                else Expect.notEqual reseeded.[name] h $"{name} depends on the seed"
                Expect.notEqual otherData.[name] h $"{name} depends on the data"
        }
    ]
