/// The native library loads (the build's patch works on this system) and basic autograd runs.
module RuntimeTests

open Expecto
open TorchSharp
open type TorchSharp.torch
open Microsoft.FSharp.Core.Operators // torch's float32, int64, ... dtypes would shadow the conversions
open Attribution.Runtime

[<Tests>]
let tests =
    testList "runtime" [
        test "libtorch loads and differentiates: d/dx sum(x^2) = 2x" {
            use scope = NewDisposeScope()
            let x = tensor([| 1.0f; -2.0f; 3.0f |]).requires_grad_(true)
            let y = (x * x).sum()
            let g = autograd.grad([| y |], [| x |]).[0]
            Expect.sequenceEqual (g.data<float32>().ToArray()) [| 2.0f; -4.0f; 6.0f |] "gradient"
        }
        test "device auto resolves to the CPU where no CUDA libtorch is configured, and cuda says why it cannot" {
            if isNull (System.Environment.GetEnvironmentVariable TorchRuntime.LibTorchVariable) then
                Expect.equal (TorchRuntime.Resolve(DeviceRequest.Auto).``type``) DeviceType.CPU "auto -> cpu"
                let e = Expect.throwsC (fun () -> TorchRuntime.Resolve(DeviceRequest.Cuda) |> ignore) id
                Expect.stringContains e.Message TorchRuntime.LibTorchVariable "names the variable"
        }
        test "seeds derived from (seed, unit) are stable and distinct" {
            Expect.equal (Seeds.Derive(7L, "noise")) (Seeds.Derive(7L, "noise")) "stable"
            Expect.notEqual (Seeds.Derive(7L, "noise")) (Seeds.Derive(7L, "init")) "distinct units"
            Expect.notEqual (Seeds.Derive(7L, "noise")) (Seeds.Derive(8L, "noise")) "distinct seeds"
        }
    ]
