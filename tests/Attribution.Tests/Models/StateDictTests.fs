/// A user's PyTorch weights in a known architecture (tests/fixtures/make_fixtures.py, made with PyTorch 1.13 and
/// torchvision 0.14): a state dict as .pth and as .safetensors gives PyTorch's maps; torchvision's resnet18 names its
/// parameters as PyTorch does and computes PyTorch's logits and Grad-CAM from the same weights; mismatches are listed.
module StateDictTests

open System
open System.IO
open Expecto
open TorchSharp
open Attribution.Methods
open Attribution.Models
open OwnModelTests

type Tensor = torch.Tensor

/// The fixture's TinyCnn, written again here as a user would write their architecture in .NET.
type TinyCnn() as this =
    inherit torch.nn.Module<Tensor, Tensor>("TinyCnn")
    let conv1 = torch.nn.Conv2d(3L, 8L, 3L, padding = 1L)
    let pool = torch.nn.MaxPool2d(2L)
    let conv2 = torch.nn.Conv2d(8L, 16L, 3L, padding = 1L)
    let head = torch.nn.Linear(64L, 4L)
    do
        this.register_module("conv1", conv1)
        this.register_module("pool", pool)
        this.register_module("conv2", conv2)
        this.register_module("head", head)
    override _.forward x =
        use scope = torch.NewDisposeScope()
        let y = torch.nn.functional.relu(conv2.call(pool.call(torch.nn.functional.relu(conv1.call x))))
        head.call(torch.nn.functional.adaptive_avg_pool2d(y, [| 2L; 2L |]).flatten(1L)).MoveToOuterDisposeScope()

/// make_fixtures.formula_state_dict, repeated: entry i of the sorted names holds sin(0.61 k + 1.3 i), scaled by kind.
let formulaStateDict (model: torch.nn.Module) =
    let entries =
        Seq.append (model.named_parameters() |> Seq.map (fun struct (n, p) -> n, (p :> Tensor))) (model.named_buffers(include_nonpersistent = false) |> Seq.map (fun struct (n, b) -> n, b))
        |> Seq.toArray |> Array.sortWith (fun (a, _) (b, _) -> String.CompareOrdinal(a, b))
    let weights = Collections.Generic.Dictionary<string, Tensor>(StringComparer.Ordinal)
    for i, (name, t) in Array.indexed entries do
        if torch.is_floating_point t then
            let v = (torch.arange(t.numel(), dtype = torch.float64) * 0.61 + 1.3 * float i).sin().view(t.shape)
            let scaled =
                if name.EndsWith "running_var" then 1.0 + 0.5 * v * v
                elif name.EndsWith "running_mean" || name.EndsWith "bias" then 0.1 * v
                elif t.dim() >= 2L then v / sqrt (float (t.numel() / t.shape.[0]))
                else 1.0 + 0.1 * v
            weights.[name] <- scaled.``to``(t.dtype)
    weights

let private probabilityMaps (model: torch.nn.Module<Tensor, Tensor>) =
    model.eval() |> ignore
    model.``to``(torch.ScalarType.Float64) |> ignore
    let references = Safetensors.Load(fixture "references.safetensors")
    // blends of two test images where the softmax is not saturated, explained in float64 as the references were
    // (make_fixtures.py says why): the methods' mathematics compared, not two libraries' float32 kernels
    let x = references.["inputs"].``to``(torch.ScalarType.Float64)
    let targets = references.["targets"]
    use saliency = Presets.Saliency(false).Explain(model, x, targets, ExplainOptions())
    use ig = Presets.IntegratedGradients(32, Attribution.Sampling.IntegrationRule.GaussLegendre).Explain(model, x, targets, ExplainOptions())
    saliency.Maps.clone(), ig.Maps.clone(), references

let private resnetReference () =
    let file = fixture "torchvision_resnet18.safetensors"
    Safetensors.Load file, Safetensors.ReadMetadata file

let private formulaResnet () =
    let model = TorchVisionModels.Create("resnet18", 10)
    let weights = formulaStateDict model
    StateDict.LoadInto(model, weights, "formula weights")
    model.eval() |> ignore
    model

[<Tests>]
let tests =
    testList "state dicts" [
        for file in [ "tiny_cnn.pth"; "tiny_cnn.safetensors" ] do
            test $"{file} in a .NET TinyCnn gives PyTorch's saliency and Integrated Gradients, in float64 to 1e-9 of the map's size" {
                use scope = torch.NewDisposeScope()
                use model = new TinyCnn()
                StateDict.Load(model, fixture file)
                let saliency, ig, references = probabilityMaps model
                closeRelativeTo 1e-9 saliency references.["saliency"] "saliency"
                closeRelativeTo 1e-9 ig references.["integrated_gradients"] "integrated gradients"
            }

        test "torchvision's resnet18 has PyTorch's parameter and buffer names and shapes, in PyTorch's order" {
            let _, metadata = resnetReference ()
            use model = TorchVisionModels.Create("resnet18", 10)
            let ours =
                Seq.append (model.named_parameters() |> Seq.map (fun struct (n, p) -> n, (p :> Tensor))) (model.named_buffers(include_nonpersistent = false) |> Seq.map (fun struct (n, b) -> n, b))
                |> Seq.map (fun (n, t) -> n + ":" + String.Join("x", t.shape)) |> Set.ofSeq
            let pytorch = metadata.["keys"].Split(';') |> Set.ofArray
            Expect.equal (Set.difference pytorch ours) Set.empty "names in PyTorch's state dict that the .NET model lacks"
            Expect.equal (Set.difference ours pytorch) Set.empty "names of the .NET model that PyTorch's state dict lacks"
        }

        test "torchvision's resnet18 with PyTorch's weights computes PyTorch's logits, to 1e-5 of their size" {
            use scope = torch.NewDisposeScope()
            let reference, _ = resnetReference ()
            use model = formulaResnet ()
            use _ = torch.no_grad()
            closeRelative (model.call reference.["inputs"]) reference.["logits"] "logits"
        }

        test "Grad-CAM at the module path layer4 (forward hooks) equals PyTorch's Grad-CAM of the same resnet18" {
            use scope = torch.NewDisposeScope()
            let reference, _ = resnetReference ()
            use model = formulaResnet ()
            use layered = new ModuleLayers(model, model, [| 3L; 64L; 64L |])
            use cam = GradCam("layer4").Explain(layered, reference.["inputs"], reference.["targets"], ExplainOptions(Output = OutputFunction.Logit))
            closeRelative (cam.Maps.narrow(1L, 0L, 1L)) reference.["grad_cam_layer4"] "Grad-CAM"
        }

        test "a module that a skip connection bypasses is refused as a stage, an unknown path lists the modules" {
            use scope = torch.NewDisposeScope()
            let reference, _ = resnetReference ()
            use model = formulaResnet ()
            use layered = new ModuleLayers(model, model, [| 3L; 64L; 64L |])
            let error = try (GradCam("layer4.0.conv2").Explain(layered, reference.["inputs"], reference.["targets"], ExplainOptions()) |> ignore; "") with :? ArgumentException as e -> e.Message
            Expect.stringContains error "bypasses" "the skip connection is named"
            let unknown = try (GradCam("layer5").Explain(layered, reference.["inputs"], reference.["targets"], ExplainOptions()) |> ignore; "") with :? ArgumentException as e -> e.Message
            Expect.stringContains unknown "layer4" "the modules are listed"
        }

        test "weights of another architecture are refused with the names listed, and the model keeps its own" {
            use scope = torch.NewDisposeScope()
            use model = TorchVisionModels.Create("resnet18", 10)
            let before = model.named_parameters() |> Seq.head |> fun struct (_, p) -> p.clone()
            let error = try (StateDict.Load(model, fixture "tiny_cnn.pth"); "") with :? InvalidDataException as e -> e.Message
            Expect.stringContains error "tiny_cnn.pth" "the file is named"
            Expect.stringContains error "missing from the file: " "missing names listed"
            Expect.stringContains error "conv1.weight (module [64, 3, 7, 7], file [8, 3, 3, 3])" "a shape that differs, with both shapes"
            Expect.stringContains error "unexpected in the file: " "extra names listed"
            let after = model.named_parameters() |> Seq.head |> fun struct (_, p) -> p
            Expect.isTrue (before.eq(after).all().item<bool>()) "nothing copied before the check"
        }

        test "a state dict's shapes read without its tensors are the shapes of its tensors, .pth and .safetensors" {
            use scope = torch.NewDisposeScope()
            for file in [ "tiny_cnn.pth"; "tiny_cnn.safetensors" ] do
                let full = StateDict.Read(fixture file)
                let shapes = StateDict.ReadShapes(fixture file)
                Expect.equal (shapes.Keys |> Set.ofSeq) (full.Keys |> Set.ofSeq) $"{file}: the names"
                for kv in full do Expect.equal shapes.[kv.Key] kv.Value.shape $"{file}: {kv.Key}"
        }

        test "a number of classes that differs from the weights' is named at the classifier" {
            use scope = torch.NewDisposeScope()
            use source = TorchVisionModels.Create("resnet18", 10)
            use target = TorchVisionModels.Create("resnet18", 4)
            let weights = formulaStateDict source
            let error = try (StateDict.LoadInto(target, weights, "weights.pth"); "") with :? InvalidDataException as e -> e.Message
            Expect.stringContains error "fc.weight (module [4, 512], file [10, 512])" "the classifier's shapes"
        }

        test "names saved from DataParallel (module. prefix) load; a TorchScript file given as a state dict is refused" {
            use scope = torch.NewDisposeScope()
            use model = new TinyCnn()
            let plain = StateDict.Read(fixture "tiny_cnn.pth")
            let prefixed = plain |> Seq.map (fun kv -> Collections.Generic.KeyValuePair("module." + kv.Key, kv.Value)) |> Collections.Generic.Dictionary
            StateDict.LoadInto(model, prefixed, "prefixed")
            Expect.isTrue ((model.named_parameters() |> Seq.head |> (fun struct (_, p) -> p :> Tensor)).eq(plain.["conv1.weight"]).all().item<bool>()) "loaded without the prefix"
            let error = try (StateDict.Read(fixture "tiny_cnn.pt") |> ignore; "") with :? InvalidDataException as e -> e.Message
            Expect.stringContains error "torch.save(model.state_dict(), path)" "says how to write a state dict"
        }
    ]
