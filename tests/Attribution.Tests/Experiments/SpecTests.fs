module SpecTests

// The spec front end: YAML files and F# values decode to the same Spec, bad files give located errors
// (all at once), and render/parse is a round trip for any valid spec.

open System
open System.IO
open Expecto
open FsCheck
open FsCheck.FSharp
open Experiments

let private specsDir = Path.Combine(AppContext.BaseDirectory, "Specs")
let private parse (relative: string) = Yaml.parseFile (Path.Combine(specsDir, relative))

let private errorsOf relative =
    match parse relative with
    | Ok spec -> failtestf "%s: expected errors, decoded %A" relative spec
    | Error errors -> errors

/// The one error at `path`; fails listing all errors otherwise.
let private errorAt (errors: SpecError list) (path: string) =
    match errors |> List.filter (fun e -> e.Path = path) with
    | [ e ] -> e
    | found -> failtestf "expected one error at %s, found %d in:\n%s" path found.Length (SpecError.formatAll errors)

let private expectAt (e: SpecError) (line: int) (column: int) =
    Expect.equal (e.Line, e.Column) (line, column) (sprintf "position of %s" (SpecError.format e))

let quickstartFSharp =
    Dsl.spec "quickstart"
    |> Dsl.withSeed 7
    |> Dsl.withDevice Auto
    |> Dsl.withExplainCount 200
    |> Dsl.withEpochs 2
    |> Dsl.withTargets [ GroundTruth; Predicted ]
    |> Dsl.withMethods
        [ Dsl.saliency
          Dsl.integratedGradients |> Dsl.withSteps 32
          Dsl.functionalInformation
          |> Dsl.withSamples 32
          |> Dsl.withSampler (IsotropicGaussian 0.15)
          |> Dsl.withId "fi_nu"
          Dsl.functionalInformation
          |> Dsl.withSampler (CovarianceGaussian { Scale = 0.15; Covariance = ClassCovariance; Jitter = 1e-5; Structure = SharedAcrossChannels; Rank = 64 })
          |> Dsl.withId "fi_sigma" ]
    |> Dsl.withMetrics [ Dsl.negativePerturbation |> Dsl.withFractions [ 0.1; 0.3; 0.5; 0.7; 0.9 ]; Dsl.rankAgreement ]
    |> Dsl.withHeatmapInputs 4

// --- generators of valid specs, built with Dsl ------------------------------------------------------

let private genPositive = Gen.choose (1, 1_000_000) |> Gen.map (fun i -> float i / 4096.0)
let private genText =
    // no control characters: paths refuse them (Catalogue.pathProblem)
    Gen.elements [ 'a'; 'Z'; '0'; ' '; '/'; '\\'; '"'; '\''; ':'; '#'; '-'; '['; '{'; ','; 'é'; '*'; '&' ]
    |> Gen.arrayOfLength 6
    |> Gen.map (fun cs -> "p" + String(cs))

let private genSampler =
    Gen.oneof
        [ genPositive |> Gen.map IsotropicGaussian
          gen {
              let! scale = genPositive
              let! jitter = Gen.choose (0, 1000) |> Gen.map (fun i -> float i * 1e-7)
              return CovarianceGaussian { Scale = scale; Covariance = ClassCovariance; Jitter = jitter; Structure = SharedAcrossChannels; Rank = 64 }
          }
          gen {
              let! scale = genPositive
              let! top, left = Gen.two (Gen.choose (0, 20))
              let! height, width = Gen.two (Gen.choose (1, 8))
              let! rest = Gen.elements [ RestFixed; RestFromMarginal ]
              return Dsl.conditionalGaussian (top, left, height, width) |> function
                  | ConditionalGaussian c -> ConditionalGaussian { c with Scale = scale; Rest = rest }
                  | other -> other
          } ]

let private genMethod =
    let sampling (m: MethodSpec) minimum =
        gen {
            let! n = Gen.choose (minimum, 500)
            let! useDefault = Gen.elements [ true; false ]
            let! s = genSampler
            let m = m |> Dsl.withSamples n
            return if useDefault then m else m |> Dsl.withSampler s
        }
    Gen.oneof
        [ Gen.elements [ true; false ] |> Gen.map (fun a -> Dsl.saliency |> Dsl.withAbsolute a)
          Gen.constant Dsl.gradientXInput
          gen {
              let! steps = Gen.choose (1, 300)
              let! rule = Gen.elements [ GaussLegendre; RiemannLeft; RiemannRight; RiemannMiddle; RiemannTrapezoid ]
              return Dsl.integratedGradients |> Dsl.withSteps steps |> Dsl.withRule rule
          }
          gen {
              let! tolerance = Gen.choose (1, 997) |> Gen.map (fun i -> float i / 997.0)
              let! maxSteps = Gen.choose (16, 10000)
              let! rule = Gen.elements [ GaussLegendre; RiemannLeft; RiemannRight; RiemannMiddle; RiemannTrapezoid ]
              return Dsl.integratedGradients |> Dsl.withRule rule |> Dsl.withAutoSteps tolerance |> Dsl.withMaxSteps maxSteps
          }
          sampling Dsl.smoothGrad 1
          sampling Dsl.smoothGradSq 1
          sampling Dsl.varGrad 2
          sampling Dsl.functionalInformation 1 ]

let private genMetric =
    Gen.oneof
        [ Gen.constant Dsl.rankAgreement
          gen {
              let! picks = Gen.subListOf [ 1..99 ]
              let! mask = Gen.choose (-1000, 1000) |> Gen.map (fun i -> float i / 7.0)
              let fractions = if picks.Length < 2 then [ 0.25; 0.5 ] else picks |> List.map (fun i -> float i / 100.0)
              return Dsl.negativePerturbation |> Dsl.withFractions fractions |> Dsl.withMaskValue mask
          } ]

let genSpec =
    gen {
        let! name = Gen.elements [ "a"; "quickstart"; "table-2"; "x_1"; "007" ]
        let! seed = Gen.choose (-1_000_000, 1_000_000)
        let! device = Gen.elements [ Auto; Cpu; Cuda ]
        let! output = genText
        let! root = Gen.optionOf genText
        // at least 2 training inputs of each of the 10 classes, which a class covariance needs (Validate's rule)
        let! trainLimit = Gen.optionOf (Gen.choose (20, 60000))
        let! explain = Gen.choose (1, 10000)
        let! epochs = Gen.choose (1, 20)
        let! lr = genPositive |> Gen.map (fun x -> x / 100.0)   // learning rates are at most 10
        let! weights = Gen.optionOf (genText |> Gen.map (fun s -> s + ".safetensors"))
        let! targets = Gen.elements [ [ GroundTruth ]; [ Predicted ]; [ Predicted; GroundTruth ] ]
        let! outputFunction = Gen.elements [ Probability; Logit ]
        let! methods = Gen.nonEmptyListOf genMethod
        let! metrics = Gen.listOf genMetric
        let! heatmaps = Gen.choose (0, 50)
        let! commonNoise = Gen.elements [ false; true ]
        // ids must be unique: keep the default id for the first use of a method, number the others
        let methods = methods |> List.mapi (fun i m -> if methods |> List.take i |> List.exists (fun p -> p.Id = m.Id) then m |> Dsl.withId (sprintf "%s-%d" m.Id i) else m)
        let spec =
            Dsl.spec name
            |> Dsl.withSeed seed
            |> Dsl.withDevice device
            |> Dsl.withOutput output
            |> Dsl.withExplainCount explain
            |> Dsl.withEpochs epochs
            |> Dsl.withLearningRate lr
            |> Dsl.withTargets targets
            // the Fisher statistic divides by f: a spec with it explains the probability (Validate's rule)
            |> Dsl.withOutputFunction (if methods |> List.exists (fun m -> Plan.dividesByOutput m.Kind) then Probability else outputFunction)
            |> Dsl.withMethods methods
            |> Dsl.withMetrics metrics
            |> Dsl.withHeatmapInputs heatmaps
            |> Dsl.withCommonNoise commonNoise
        let spec = match root with Some r -> spec |> Dsl.withRoot r | None -> spec
        let spec = match trainLimit with Some n -> spec |> Dsl.withTrainLimit n | None -> spec
        let spec = match weights with Some w -> spec |> Dsl.withWeights w | None -> spec
        return spec
    }

/// A valid spec with one or two values that may break a rule (ranges, duplicate ids).
let genMaybeInvalid =
    let edits: Gen<Spec -> Spec> list =
        [ Gen.choose (-2, 3) |> Gen.map Dsl.withEpochs
          Gen.choose (-1, 2) |> Gen.map Dsl.withTrainBatchSize
          Gen.choose (9998, 10002) |> Gen.map Dsl.withExplainCount
          Gen.choose (-1, 1) |> Gen.map Dsl.withTrainLimit
          Gen.choose (48, 52) |> Gen.map Dsl.withHeatmapInputs
          Gen.choose (-2, 2) |> Gen.map (fun i -> Dsl.withLearningRate (float i / 1000.0))
          Gen.elements [ "ok"; "Not ok"; "" ] |> Gen.map (fun n (s: Spec) -> { s with Name = n })
          Gen.elements [ []; [ Predicted; Predicted ]; [ GroundTruth ] ] |> Gen.map Dsl.withTargets
          gen {
              let! steps = Gen.choose (-1, 2)
              let! samples = Gen.choose (0, 3)
              let! stdev = Gen.choose (-1, 1) |> Gen.map (fun i -> float i / 10.0)
              let! sameId = Gen.elements [ true; false ]
              let vg = Dsl.varGrad |> Dsl.withSamples samples |> Dsl.withSampler (IsotropicGaussian stdev)
              let ig = Dsl.integratedGradients |> Dsl.withSteps steps
              return Dsl.withMethods [ vg; (if sameId then ig |> Dsl.withId vg.Id else ig) ]
          }
          // a box of the wrong length or with an empty side
          Gen.elements [ [ 1; 2; 3 ]; [ 0; 0; 0; 4 ]; [ 2; 2; 5; 0 ]; [ 1; 1; 1; 1; 1 ]; [ 3; 3; 3; 3 ] ]
          |> Gen.map (fun box -> Dsl.withMethods [ Dsl.functionalInformation |> Dsl.withSampler (ConditionalGaussian { Scale = 0.15; Jitter = 1e-5; Box = box; Rest = RestFixed }) ]) ]
    gen {
        let! spec = genSpec
        let! picked = Gen.subListOf edits
        let! fs = picked |> Gen.collectToList id
        return fs |> List.fold (fun s f -> f s) spec
    }

[<Tests>]
let tests =
    testList
        "Spec"
        [ testList
              "good specs"
              [ test "quickstart.yaml decodes to the same Spec as the Dsl-built quickstart" {
                    Expect.equal (parse "good/quickstart.yaml") (Ok quickstartFSharp) "yaml = F#"
                }
                test "a minimal spec takes every other value from the catalogue's defaults" {
                    let expected = Dsl.spec "minimal" |> Dsl.withMethods [ Dsl.smoothGrad ]
                    Expect.equal (parse "good/minimal.yaml") (Ok expected) "defaults"
                }
                test "explain.common_noise decodes, and is false when absent" {
                    let text common = $"name: cn\ndata: {{ dataset: fashion_mnist }}\nmodel: {{ architecture: fashion_cnn }}\n{common}methods:\n  - method: smooth_grad\n"
                    let expected = Dsl.spec "cn" |> Dsl.withMethods [ Dsl.smoothGrad ]
                    Expect.equal (Yaml.parseText "cn.yaml" (text "")) (Ok expected) "absent: off"
                    Expect.equal (Yaml.parseText "cn.yaml" (text "explain: { common_noise: true }\n")) (Ok(expected |> Dsl.withCommonNoise true)) "on"
                    match Yaml.parseText "cn.yaml" (text "explain: { common_noise: maybe }\n") with
                    | Ok _ -> failtest "common_noise: maybe decoded"
                    | Error errors -> expectAt (errorAt errors "explain.common_noise") 4 26
                }
                test "the Dsl quickstart is valid" { Expect.isEmpty (Validate.spec quickstartFSharp) "no errors" }
                test "Dsl defaults are the catalogue's defaults" {
                    Expect.equal Dsl.smoothGrad.Kind (SmoothGrad { Samples = 50; Sampler = IsotropicGaussian 0.15 }) "smooth_grad"
                    Expect.equal
                        Dsl.functionalInformation.Kind
                        (FunctionalInformation { Samples = 50; Sampler = CovarianceGaussian { Scale = 0.15; Covariance = ClassCovariance; Jitter = 1e-5; Structure = SharedAcrossChannels; Rank = 64 } })
                        "functional_information"
                    Expect.equal Dsl.integratedGradients.Kind (IntegratedGradients(50, GaussLegendre)) "integrated_gradients"
                    Expect.equal Dsl.saliency.Kind (Saliency true) "saliency"
                } ]
          testList
              "integrated gradients' steps"
              [ let ig (lines: string) = Yaml.parseText "ig.yaml" ("name: ig\ndata: { dataset: fashion_mnist }\nmodel: { architecture: fashion_cnn }\nmethods:\n  - method: integrated_gradients\n" + lines)
                test "steps: auto decodes with the default tolerance and max_steps, and writes them back" {
                    match ig "    steps: auto\n" with
                    | Ok spec ->
                        Expect.equal spec.Methods.Head.Kind (IntegratedGradientsAuto(0.01, 1024, GaussLegendre)) "defaults"
                        Expect.equal spec (Dsl.spec "ig" |> Dsl.withMethods [ Dsl.integratedGradients |> Dsl.withAutoSteps 0.01 ]) "as the Dsl builds it"
                        Expect.stringContains (Yaml.render spec) "steps: auto" "rendered"
                        Expect.equal (Yaml.parseText "again.yaml" (Yaml.render spec)) (Ok spec) "and read back"
                    | Error errors -> failtest (SpecError.formatAll errors)
                    match ig "    steps: auto\n    tolerance: 0.001\n    max_steps: 256\n    rule: riemann_trapezoid\n" with
                    | Ok spec -> Expect.equal spec.Methods.Head.Kind (IntegratedGradientsAuto(0.001, 256, RiemannTrapezoid)) "given"
                    | Error errors -> failtest (SpecError.formatAll errors)
                }
                test "an integer keeps the fixed-step case, whose canonical text (the cache key) and layout (the seed) are as before" {
                    match ig "    steps: 32\n" with
                    | Ok spec -> Expect.equal spec.Methods.Head.Kind (IntegratedGradients(32, GaussLegendre)) "fixed steps"
                    | Error errors -> failtest (SpecError.formatAll errors)
                    Expect.equal (Canonical.text (IntegratedGradients(32, GaussLegendre))) "IntegratedGradients(steps=32,rule=GaussLegendre)" "canonical text"
                    Expect.equal (Hashing.display (IntegratedGradients(32, GaussLegendre))) "IntegratedGradients (32, GaussLegendre)" "layout"
                }
                test "a non-integer other than auto is a located error saying what steps takes" {
                    for value, found in [ "32.5", "32.5"; "automatic", "automatic"; "[auto]", "a sequence"; "\"\"", "" ] do
                        match ig $"    steps: {value}\n" with
                        | Ok spec -> failtestf "steps: %s decoded to %A" value spec.Methods
                        | Error errors ->
                            let e = errorAt errors "methods[0].steps"
                            expectAt e 6 12
                            Expect.equal (e.Message, e.Found) ("expected an integer or auto", Some found) value
                }
                test "tolerance and max_steps with a count of steps are located errors (they would be ignored), as are their ranges" {
                    match ig "    steps: 32\n    tolerance: 0.01\n    max_steps: 64\n" with
                    | Ok spec -> failtestf "decoded %A" spec.Methods
                    | Error errors ->
                        expectAt (errorAt errors "methods[0].tolerance") 7 16
                        expectAt (errorAt errors "methods[0].max_steps") 8 16
                        Expect.stringContains (errorAt errors "methods[0].tolerance").Message "steps: auto only" "message"
                    match ig "    steps: auto\n    tolerance: 0\n    max_steps: 8\n" with
                    | Ok spec -> failtestf "decoded %A" spec.Methods
                    | Error errors ->
                        expectAt (errorAt errors "methods[0].tolerance") 7 16
                        expectAt (errorAt errors "methods[0].max_steps") 8 16
                    let built = Dsl.spec "ig" |> Dsl.withMethods [ Dsl.integratedGradients |> Dsl.withAutoSteps 2.0 ]
                    Expect.isNonEmpty (Validate.spec built) "Validate finds a tolerance out of range in an F# spec"
                } ]
          testList
              "bad specs"
              [ test "a typo in a method name is located, lists the methods and suggests the nearest" {
                    let e = errorAt (errorsOf "bad/method-typo.yaml") "methods[1].method"
                    expectAt e 6 13
                    Expect.equal e.Allowed (Catalogue.methodNames ()) "allowed"
                    Expect.stringContains (SpecError.format e) "(found 'smoth_grad'); did you mean 'smooth_grad'? allowed: saliency, gradient_x_input" "format"
                    Expect.stringStarts (SpecError.format e) (Path.Combine(specsDir, "bad/method-typo.yaml") + ":6:13: methods[1].method: unknown method") "prefix"
                }
                test "an unknown top-level key suggests the nearest key" {
                    let e = errorAt (errorsOf "bad/unknown-top-level-key.yaml") "seeds"
                    expectAt e 2 1
                    Expect.stringContains (SpecError.format e) "unknown top-level key (found 'seeds'); did you mean 'seed'?" "format"
                }
                test "a value of the wrong type says what was expected and found" {
                    let e = errorAt (errorsOf "bad/wrong-type.yaml") "model.epochs"
                    expectAt e 5 11
                    Expect.equal (e.Message, e.Found) ("expected an integer", Some "abc") "message"
                }
                test "an unknown enum value lists the allowed values" {
                    let e = errorAt (errorsOf "bad/bad-enum.yaml") "device"
                    expectAt e 2 9
                    Expect.equal e.Allowed [ "auto"; "cpu"; "cuda" ] "allowed"
                }
                test "a missing name is reported at the mapping that lacks it" {
                    let errors = errorsOf "bad/missing-name.yaml"
                    let e = errorAt errors "name"
                    expectAt e 1 1
                    Expect.equal e.Message "missing required field" "message"
                    Expect.hasLength errors 1 "only that"
                }
                test "duplicate method ids are reported at the second id" {
                    let e = errorAt (errorsOf "bad/duplicate-ids.yaml") "methods[1].id"
                    expectAt e 7 9
                    Expect.equal e.Found (Some "a") "found"
                }
                test "several errors are reported at once, each located" {
                    let errors = errorsOf "bad/several-errors.yaml"
                    let expected =
                        [ "name", 1, 7
                          "data.explian", 4, 3
                          "model.learning_rate", 5, 52
                          "explain.targets[1]", 6, 36
                          "explain.batch_size", 6, 63
                          "methods[0].steps", 9, 12
                          "methods[0].rule", 10, 11
                          "methods[1].samples", 12, 14
                          "methods[1].sampler.kind", 13, 22
                          "metrics[0].fractions[1]", 16, 22
                          "metrics[0].fractions[2]", 16, 27
                          "report.heatmap_inputs", 17, 27 ]
                    for path, line, column in expected do
                        expectAt (errorAt errors path) line column
                    Expect.hasLength errors expected.Length (SpecError.formatAll errors)
                    Expect.stringContains (SpecError.format (errorAt errors "data.explian")) "did you mean 'explain'?" "data key"
                    Expect.stringContains (SpecError.format (errorAt errors "methods[1].sampler.kind")) "did you mean 'isotropic_gaussian'?" "sampler"
                    Expect.equal (errorAt errors "methods[1].samples").Message "must be between 2 and 10000" "var_grad"
                }
                test "malformed YAML gives a located error, not an exception" {
                    match errorsOf "bad/malformed.yaml" with
                    | [ e ] ->
                        Expect.isGreaterThanOrEqual e.Line 2 (SpecError.format e)
                        Expect.stringStarts e.Message "YAML syntax: " "message"
                    | errors -> failtestf "expected one error:\n%s" (SpecError.formatAll errors)
                }
                test "a parameter given to a method that takes none, or an unknown one, names what the method takes" {
                    let errors = errorsOf "bad/parameter-of-method-without-parameters.yaml"
                    let e = errorAt errors "methods[0].steps"
                    expectAt e 6 5
                    Expect.equal e.Message "method 'gradient_x_input' takes no parameters" "no parameters"
                    let e = errorAt errors "methods[1].stepz"
                    expectAt e 8 5
                    Expect.equal e.Message "unknown parameter of method 'saliency'" "unknown"
                    Expect.contains e.Allowed "abs" "names abs"
                }
                test "a key given twice is a located error" {
                    match errorsOf "bad/duplicate-key.yaml" with
                    | [ e ] ->
                        Expect.equal e.Line 3 (SpecError.format e)
                        Expect.stringContains e.Message "duplicate key" "message"
                    | errors -> failtestf "expected one error:\n%s" (SpecError.formatAll errors)
                }
                test "every prefix of a good spec decodes or gives errors, never an exception" {
                    let text = File.ReadAllText(Path.Combine(specsDir, "good/quickstart.yaml"))
                    for n in 0 .. text.Length do
                        match Yaml.parseText "prefix.yaml" (text.Substring(0, n)) with
                        | Ok _ -> ()
                        | Error errors -> Expect.isNonEmpty errors "errors"
                }
                test "a missing file is a SpecError" {
                    match Yaml.parseFile "/nonexistent/x.yaml" with
                    | Error [ e ] -> Expect.stringStarts e.Message "no such spec file" "message"
                    | other -> failtestf "unexpected %A" other
                }
                test "an empty file is a SpecError" {
                    Expect.isError (Yaml.parseText "empty.yaml" "") "empty"
                } ]
          testList
              "F# values"
              [ test "Validate.spec reports every broken rule of an F# spec, at <fsharp>" {
                    let bad =
                        Dsl.spec "Bad Name"
                        |> Dsl.withEpochs -1
                        |> Dsl.withMethods [ Dsl.varGrad |> Dsl.withSamples 1; Dsl.saliency |> Dsl.withId "var_grad" ]
                        |> Dsl.withMetrics [ Dsl.negativePerturbation |> Dsl.withFractions [ 0.5; 0.2 ] ]
                    let errors = Validate.spec bad
                    Expect.equal
                        (errors |> List.map (fun e -> e.Path) |> List.sort)
                        ([ "name"; "model.epochs"; "methods[0].samples"; "methods[1].id"; "metrics[0].fractions[1]" ] |> List.sort)
                        (SpecError.formatAll errors)
                    Expect.all errors (fun e -> e.File = "<fsharp>" && e.Line = 0) "no positions"
                    Expect.stringStarts (SpecError.format (errors |> List.find (fun e -> e.Path = "model.epochs"))) "<fsharp>: model.epochs: must be between 0 and 1000 (found '-1')" "format"
                }
                test "an empty method list is an error" {
                    Expect.equal (Validate.spec (Dsl.spec "x") |> List.map (fun e -> e.Path, e.Message)) [ "methods", "at least one method is required" ] "empty"
                } ]
          testList
              "catalogue"
              [ test "describe lists every method, sampler and metric with its parameters and defaults" {
                    let text = CatalogueText.describe ()
                    for name in (Catalogue.methodNames ()) @ (Catalogue.samplerNames ()) @ (Catalogue.metricNames ()) do
                        Expect.stringContains text name name
                    Expect.stringContains text "Gat et al. 2022, Eq. 13" "citation"
                    Expect.stringContains text "default { kind: covariance_gaussian, scale: 0.15, covariance: class, jitter: 1e-05, structure: shared_across_channels, rank: 64 }" "fi default"
                }
                test "did you mean uses edit distance" {
                    Expect.equal (SpecError.suggest "smoth_grad" (Catalogue.methodNames ())) (Some "smooth_grad") "one deletion"
                    Expect.equal (SpecError.suggest "zzz" (Catalogue.methodNames ())) None "too far"
                } ]
          testList
              "round trip"
              [ testProperty "Yaml.render then Yaml.parseText gives back any valid Dsl-built spec"
                <| Prop.forAll (Arb.fromGen genSpec) (fun spec ->
                    let yaml = Yaml.render spec
                    match Validate.spec spec, Yaml.parseText "render.yaml" yaml with
                    | [], Ok back -> back = spec |> Prop.label yaml
                    | errors, parsed -> false |> Prop.label (sprintf "%s\n%A\n%A" yaml errors parsed))
                testProperty "the YAML decoder and Validate.spec break the same rules at the same paths"
                <| Prop.forAll (Arb.fromGen genMaybeInvalid) (fun spec ->
                    let yaml = Yaml.render spec
                    let fromYaml =
                        match Validate.text "render.yaml" yaml with
                        | Ok _ -> []
                        | Error errors -> errors |> List.map (fun e -> e.Path, e.Message)
                    let fromFSharp = Validate.spec spec |> List.map (fun e -> e.Path, e.Message)
                    List.sort fromYaml = List.sort fromFSharp |> Prop.label (sprintf "%s\nyaml: %A\nF#: %A" yaml fromYaml fromFSharp)) ] ]

[<Tests>]
let fullScale =
    testList "run --full" [
        test "the full section sets the explained inputs and epochs, drops the training limit, and renames the run" {
            let yaml = "name: t\ndata: { dataset: fashion_mnist, train_limit: 1000, explain: 20 }\nmodel: { architecture: fashion_cnn, epochs: 2 }\nmethods:\n  - method: saliency\nfull: { explain: 5000, epochs: 9 }\n"
            match Yaml.parseText "t.yaml" yaml with
            | Error e -> failtest (SpecError.formatAll e)
            | Ok spec ->
                let full = SpecFiles.atFullScale spec
                Expect.equal (full.Name, full.Data.Explain, full.Data.TrainLimit, full.Model.Epochs) ("t-full", 5000, None, 9) "the full section's values"
                Expect.equal { full with Name = spec.Name; Data = spec.Data; Model = spec.Model } spec "nothing else changes"
                Expect.notEqual (Plan.compile full "data").Steps (Plan.compile spec "data").Steps "a different plan (its steps hash the sizes)"
        }
        test "without a full section every test input is explained and the epochs stay" {
            let yaml = "name: t\ndata: { dataset: fashion_mnist, train_limit: 1000, explain: 20 }\nmodel: { architecture: fashion_cnn, epochs: 2 }\nmethods:\n  - method: saliency\n"
            match Yaml.parseText "t.yaml" yaml with
            | Error e -> failtest (SpecError.formatAll e)
            | Ok spec ->
                let full = SpecFiles.atFullScale spec
                Expect.equal (full.Data.Explain, full.Data.TrainLimit, full.Model.Epochs) (Int32.MaxValue, None, 2) "every input, the whole training set, the same epochs"
        }
        test "--only keeps the named documents of a file, in file order, and an unknown name lists the names there are" {
            let one = "name: a\ndata: { dataset: fashion_mnist }\nmodel: { architecture: fashion_cnn }\nmethods: [ { method: saliency } ]\n"
            let parse doc =
                match Yaml.parseDocument "m.yaml" doc with
                | Ok(spec, node) -> ({ Source = "m.yaml"; Text = doc; Node = node; Spec = spec }: SpecFiles.Loaded)
                | Error e -> failtest (SpecError.formatAll e)
            do
                let loaded = [ one; one.Replace("name: a", "name: b"); one.Replace("name: a", "name: c") ] |> List.map parse
                let names selected = match selected with Ok chosen -> chosen |> List.map (fun (d: SpecFiles.Loaded) -> d.Spec.Name) | Error e -> failtest e
                Expect.equal (names (SpecFiles.selectSpecs [] loaded)) [ "a"; "b"; "c" ] "no --only: every document"
                Expect.equal (names (SpecFiles.selectSpecs [ "c"; "a" ] loaded)) [ "a"; "c" ] "the named ones, in file order"
                match SpecFiles.selectSpecs [ "b"; "d" ] loaded with
                | Ok _ -> failtest "an unknown name is an error"
                | Error e ->
                    Expect.stringContains e "'d'" "names the unknown spec"
                    Expect.stringContains e "a, b, c" "lists the specs there are"
        }
    ]
