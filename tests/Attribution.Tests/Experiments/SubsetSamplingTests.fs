/// The DSL's conditional_gaussian sampler (Functional Information, Cor. 4.2) and the constant baseline of
/// times_input, from YAML to the maps.
module SubsetSamplingTests

open System
open Expecto
open TorchSharp
open type TorchSharp.torch
open Microsoft.FSharp.Core.Operators // torch's float32, int64, ... dtypes would shadow the conversions
open Experiments
open TestModels

let private side = 4L
let private features = int (side * side)

/// Two class covariances over 4x4 one-channel images, shared as the DSL shares them.
let private covariances () =
    let perClass = stack([| randomCovariance 11 features; randomCovariance 12 features |], 0L)
    Attribution.Sampling.ClassCovariance.FromCovariances(perClass.``to``(ScalarType.Float32), 1L, side, side, 0.0)

let private contextWith (jitter: float) (covariance: Attribution.Sampling.ClassCovariance) : Building.MethodContext =
    let table = Collections.Generic.Dictionary<float, Attribution.Sampling.ClassCovariance>()
    table.[jitter] <- covariance
    { Covariances = table; References = (fun _ -> failwith "no references in this test")
      Model = tinyNet 0 1 1 1; Structured = (fun _ _ -> failwith "no structured covariances in this test") }

/// p_0 = sigmoid(a.x + b): grad p_0 = p_0 (1 - p_0) a, so the Fisher ratio (C g)_i g_i / p_0 is
/// p_0 (1 - p_0)^2 (C a)_i a_i: every feature shares one sample average, and the map is proportional to (C a) (.) a.
let private slope = [| for i in 0 .. features - 1 -> float32 (0.3 * Math.Sin(float i + 1.0)) |]

let private fisherMap (sampler: SamplerSpec) (context: Building.MethodContext) (target: int64) =
    use scope = NewDisposeScope()
    let model = new ExponentialNet(slope, -1.0f)
    let x = rand([| 1L; 1L; side; side |], generator = new Generator(3UL, CPU))
    let m = Execute.methodOf (FunctionalInformation { Samples = 64; Sampler = sampler }) context
    use e = m.Explain(model, x, tensor([| target |]), Attribution.Methods.ExplainOptions(Attribution.Methods.OutputFunction.Probability, Seed = 9L))
    toArray e.Maps

/// (C a)_i a_i for the covariance C of the measure, [features].
let private expected (c: Tensor) =
    let a = tensor(slope |> Array.map float, dtype = ScalarType.Float64)
    toArray (c.matmul(a) * a)

/// Maps agree with (C a) (.) a up to one positive factor.
let private proportional (actual: float[]) (wanted: float[]) (what: string) =
    let k = Array.zip actual wanted |> Array.maxBy (fun (_, w) -> abs w) |> fun (a, w) -> a / w
    Expect.isGreaterThan k 0.0 $"{what}: a positive factor"
    for a, w in Array.zip actual wanted do
        Expect.isLessThan (abs (a - k * w)) (1e-4 * (Array.map abs actual |> Array.max)) $"{what}: proportional to (C a) (.) a"

[<Tests>]
let tests =
    testList "subset sampling in the DSL" [
        test "conditional_gaussian with the rest fixed: the map is (S11 - S12 S22^-1 S21) a (.) a on the box, 0 elsewhere" {
            use scope = NewDisposeScope()
            let covariance = covariances ()
            let box = [ 1; 1; 2; 3 ]
            let sampler = ConditionalGaussian { Scale = 0.5; Jitter = 1e-6; Box = box; Rest = RestFixed }
            let map = fisherMap sampler (contextWith 1e-6 covariance) 1L
            let inBox i = let r, c = i / int side, i % int side in r >= 1 && r < 3 && c >= 1 && c < 4
            let one = [| for i in 0 .. features - 1 do if inBox i then yield int64 i |] |> tensor
            let two = [| for i in 0 .. features - 1 do if not (inBox i) then yield int64 i |] |> tensor
            let sigma = covariance.Covariances.[1L].``to``(ScalarType.Float64) * 0.5
            let s11 = sigma.index_select(0L, one).index_select(1L, one)
            let s12 = sigma.index_select(0L, one).index_select(1L, two)
            let s22 = sigma.index_select(0L, two).index_select(1L, two)
            let schur = s11 - s12.matmul(linalg.solve(s22, s12.t()))
            let c = zeros([| int64 features; int64 features |], dtype = ScalarType.Float64)
            c.index_put_(schur, TensorIndex.Tensor(one.unsqueeze(1L)), TensorIndex.Tensor(one.unsqueeze(0L))) |> ignore
            for i in 0 .. features - 1 do
                if not (inBox i) then Expect.equal map.[i] 0.0 $"pixel {i} outside the box does not move"
            proportional map (expected c) "rest fixed"
        }

        test "conditional_gaussian with the rest from its marginal: the points are N(x, scale Sigma), the map (scale Sigma a) (.) a everywhere" {
            use scope = NewDisposeScope()
            let covariance = covariances ()
            let sampler = ConditionalGaussian { Scale = 0.5; Jitter = 1e-6; Box = [ 0; 0; 2; 2 ]; Rest = RestFromMarginal }
            let map = fisherMap sampler (contextWith 1e-6 covariance) 0L
            proportional map (expected (covariance.Covariances.[0L].``to``(ScalarType.Float64) * 0.5)) "rest from its marginal"
        }

        test "times_input with a baseline multiplies the statistic by x - b" {
            use scope = NewDisposeScope()
            let model = tinyNet 9 4 5 2
            let x = rand(2, 1, 1, 4)
            let t = tensor([| 0L; 1L |])
            let sampling = { Samples = 6; Sampler = IsotropicGaussian 0.1 }
            let context = contextWith 1e-5 (covariances ())
            let run kind =
                use e = (Execute.methodOf kind context).Explain(model, x, t, Attribution.Methods.ExplainOptions(Seed = 5L))
                toArray e.Maps
            let plain = run (SampledGradients(sampling, MeanAbsolute, false, 0.0))
            let shifted = run (SampledGradients(sampling, MeanAbsolute, true, 0.25))
            for s, (p, xi) in Array.zip shifted (Array.zip plain (toArray x)) do
                Expect.floatClose Accuracy.medium s (p * (xi - 0.25)) "statistic * (x - 0.25)"
        }

        test "conditional_gaussian reads from YAML; a box that is not four integers names the field" {
            let spec (sampler: string) = $"name: c\ndata: {{ dataset: fashion_mnist }}\nmodel: {{ architecture: fashion_cnn }}\nmethods:\n  - method: functional_information\n    sampler: {sampler}\n"
            match Yaml.parseText "c.yaml" (spec "{ kind: conditional_gaussian, box: [7, 8, 10, 12], rest: marginal }") with
            | Ok s ->
                Expect.equal s.Methods.Head.Kind (FunctionalInformation { Samples = 50; Sampler = ConditionalGaussian { Scale = 0.15; Jitter = 1e-5; Box = [ 7; 8; 10; 12 ]; Rest = RestFromMarginal } }) "decoded with defaults"
            | Error e -> failtest (SpecError.formatAll e)
            match Yaml.parseText "c.yaml" (spec "{ kind: conditional_gaussian, box: [7, 8, 10] }") with
            | Ok _ -> failtest "three numbers are not a box"
            | Error errors ->
                let text = SpecError.formatAll errors
                Expect.stringContains text "box" "names the field"
                Expect.stringContains text "four integers" "says what a box is"
                Expect.equal errors.Head.Line 6 "on the sampler's line"
            match Yaml.parseText "c.yaml" (spec "{ kind: conditional_gaussian }") with
            | Ok _ -> failtest "the box has no default"
            | Error errors -> Expect.stringContains (SpecError.formatAll errors) "box" "the missing box is named"
        }

        test "a box outside the image, and conditional_gaussian on text, are located composition errors" {
            let check (dataset: string) (architecture: string) (box: string) (needle: string) =
                let yaml = $"name: c\ndata: {{ dataset: {dataset} }}\nmodel: {{ architecture: {architecture} }}\nmethods:\n  - method: saliency\n  - method: functional_information\n    sampler: {{ kind: conditional_gaussian, box: {box} }}\n"
                match Yaml.parseText "c.yaml" yaml with
                | Error e -> failtest (SpecError.formatAll e)
                | Ok spec ->
                    match SpecFiles.compositionErrors "c.yaml" yaml spec with
                    | [ e ] ->
                        Expect.equal (e.Line, e.Path) (7, "methods[1].sampler") "located at the sampler"
                        Expect.stringContains (SpecError.format e) needle "says why"
                    | other -> failtest $"expected one error, got {other}"
            check "fashion_mnist" "fashion_cnn" "[20, 4, 10, 4]" "28x28"
            check "spam_assassin" "text_bilstm" "[0, 0, 2, 2]" "image pixels or tabular features; data.dataset spam_assassin is neither"
            let fits = "name: c\ndata: { dataset: fashion_canvas }\nmodel: { architecture: fashion_cnn }\nmethods:\n  - method: functional_information\n    sampler: { kind: conditional_gaussian, box: [20, 4, 10, 4] }\n"
            match Yaml.parseText "c.yaml" fits with
            | Ok spec -> Expect.isEmpty (SpecFiles.compositionErrors "c.yaml" fits spec) "the same box fits a 56-pixel canvas"
            | Error e -> failtest (SpecError.formatAll e)
        }
    ]
