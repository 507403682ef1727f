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
        test "a convolution's input gradient on RGB images equals float64's to float32 precision, at 1 and 2 threads (oneDNN's AVX-512 kernels got it wrong on AMD EPYC)" {
            // d/dx sum(conv(x)^2) for a 3 -> 8 channel 3x3 convolution, padding 1, of 4 images 32x32: the case where
            // libtorch 2.10's oneDNN was 66% off with AVX-512 kernels (OneDnnIsa); in float64 oneDNN is not used
            let threads = get_num_threads()
            try
                for t in [ 1; 2 ] do
                    set_num_threads t
                    use scope = NewDisposeScope()
                    use g = new Generator(5UL)
                    let conv = nn.Conv2d(3L, 8L, 3L, padding = 1L)
                    let x = rand([| 4L; 3L; 32L; 32L |], generator = g)
                    let gradient (x: Tensor) =
                        let x = x.detach().requires_grad_(true)
                        let y = conv.call x
                        autograd.grad([| (y * y).sum() |], [| x |]).[0].``to``(ScalarType.Float64)
                    let single = gradient x
                    conv.``to``(ScalarType.Float64) |> ignore
                    let double = gradient (x.``to``(ScalarType.Float64))
                    let relative = ((single - double).abs().max() / double.abs().max()).item<float>()
                    Expect.isLessThan relative 1e-5 $"{t} threads: largest difference {relative:E2} of the gradient's size"
            finally set_num_threads threads
            Expect.equal (OneDnnIsa.Applied |> Option.ofObj) (Some OneDnnIsa.Cap) "oneDNN capped (no cap of the user's here)"
        }
        test "NNPACK is off once libtorch is loaded (libtorch 2.10 logs a line per convolution where NNPACK is unsupported)" {
            TorchRuntime.Initialise()
            let enabled = NnpackSwitch.Enabled()
            Expect.isTrue enabled.HasValue "the switch is found in the loaded libtorch"
            Expect.isFalse enabled.Value "NNPACK off"
        }
        test "seeds derived from (seed, unit) are stable and distinct" {
            Expect.equal (Seeds.Derive(7L, "noise")) (Seeds.Derive(7L, "noise")) "stable"
            Expect.notEqual (Seeds.Derive(7L, "noise")) (Seeds.Derive(7L, "init")) "distinct units"
            Expect.notEqual (Seeds.Derive(7L, "noise")) (Seeds.Derive(8L, "noise")) "distinct seeds"
        }

        test "the seed rule docs/methods.md gives a Python user holds, and PyTorch's generator draws the same noise from it" {
            // Computed with Python's hashlib and Debian's PyTorch 1.13 (torch.Generator().manual_seed(s)):
            // s = first 8 bytes of sha256("7/input/42"), little-endian, top bit cleared.
            let s = Seeds.Derive(7L, "input/42")
            Expect.equal s 7444902434279236307L "the 63-bit seed"
            use g = new TorchSharp.torch.Generator(uint64 s, TorchSharp.torch.CPU)
            let normals = TorchSharp.torch.randn([| 20L |], generator = g).data<float32>().ToArray() |> Array.take 5
            let pytorch = [| -1.79774916f; 0.532560587f; 1.43782437f; -1.28832829f; -0.669260919f |]
            for mine, theirs in Array.zip normals pytorch do
                Expect.isLessThanOrEqual (abs (mine - theirs)) (1e-6f * abs theirs + 1e-7f) $"randn: {mine} against PyTorch's {theirs}"
            use g2 = new TorchSharp.torch.Generator(uint64 s, TorchSharp.torch.CPU)
            let uniforms = TorchSharp.torch.rand([| 3L |], generator = g2).data<float32>().ToArray()
            for mine, theirs in Array.zip uniforms [| 0.937262118f; 0.60433358f; 0.647090793f |] do
                Expect.isLessThanOrEqual (abs (mine - theirs)) (1e-6f * abs theirs) $"rand: {mine} against PyTorch's {theirs}"
        }
    ]
