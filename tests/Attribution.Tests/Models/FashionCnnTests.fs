/// The model can be cut at any stage without changing what it computes.
module FashionCnnTests

open Expecto
open TorchSharp
open type TorchSharp.torch
open Microsoft.FSharp.Core.Operators // torch's float32, int64, ... dtypes would shadow the conversions
open Attribution.Models

[<Tests>]
let tests =
    testList "fashion cnn" [
        test "ForwardFrom(stage, ForwardTo(stage, x)) = forward(x) at every stage" {
            use scope = NewDisposeScope()
            torch.manual_seed 5L |> ignore
            let model = new FashionCnn()
            model.eval() |> ignore
            let x = rand(3, 1, 28, 28)
            let expected = model.forward(x)
            for stage in model.Stages do
                let logits = model.ForwardFrom(stage, model.ForwardTo(stage, x))
                Expect.isTrue (logits.allclose(expected, 1e-5, 1e-6)) $"cut at {stage}"
        }

        test "re-initialising a stage changes its parameters and no other stage's" {
            use scope = NewDisposeScope()
            torch.manual_seed 6L |> ignore
            let model = new FashionCnn()
            let before = model.state_dict() |> Seq.map (fun kv -> kv.Key, kv.Value.clone()) |> Map.ofSeq
            use g = new Generator(9UL, CPU)
            model.Reinitialise("fc2", g)
            for KeyValue(name, value) in model.state_dict() do
                let same = value.allclose(before.[name], 0.0, 0.0)
                if name.StartsWith "fc2." then Expect.isFalse same $"{name} re-drawn"
                else Expect.isTrue same $"{name} untouched"
        }
    ]
