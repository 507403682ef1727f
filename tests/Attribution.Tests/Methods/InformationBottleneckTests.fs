/// IBA (Schulz et al. 2020), per-sample bottleneck, on a layered model whose relevant activations are known.
module InformationBottleneckTests

open System.Collections.Generic
open Expecto
open TorchSharp
open type TorchSharp.torch
open Microsoft.FSharp.Core.Operators // torch's float32, int64, ... dtypes would shadow the conversions
open Attribution.Methods
open Attribution.Models
open TestModels

/// Stage "features": A = conv1x1(x) with K = 4 channels, each A_k = x (weights 1, bias 0) on 8x8 inputs;
/// stage "head": logits [c, -c], c = sum of A over channel 0, rows 0..2, columns 0..2. Nothing else matters.
type CornerNet() as this =
    inherit nn.Module<Tensor, Tensor>("corner_net")
    let conv = nn.Conv2d(1L, 4L, 1L)
    do this.RegisterComponents()
    do
        use noGrad = no_grad()
        conv.weight.fill_(Scalar.op_Implicit 1.0f) |> ignore
        match conv.bias with
        | null -> ()
        | b -> b.zero_() |> ignore
    let features (x: Tensor) = conv.forward(x)
    let head (a: Tensor) =
        use scope = NewDisposeScope()
        let c = a.narrow(1L, 0L, 1L).narrow(2L, 0L, 3L).narrow(3L, 0L, 3L).sum([| 1L; 2L; 3L |])
        stack([| c; -c |], 1L).MoveToOuterDisposeScope()
    override _.forward(x) =
        use scope = NewDisposeScope()
        (head (features x)).MoveToOuterDisposeScope()
    interface ILayeredModel with
        member _.Stages = [| "features"; "head" |] :> IReadOnlyList<string>
        member _.ParameterStages = [| "features" |] :> IReadOnlyList<string>
        member _.ForwardTo(stage, x) = if stage = "features" then features x else head (features x)
        member _.ForwardFrom(stage, a) = if stage = "features" then head a else a.alias()
        member _.Reinitialise(_, _) = ()

/// CornerNet, its statistics over 256 N(0, 1) references, and two inputs whose corner says class 0 and class 1.
let private corner () =
    use g = new Generator(5UL, CPU)
    let model = new CornerNet()
    let stats = InformationBottleneck.EstimateActivationStatistics(model, "features", randn([| 256L; 1L; 8L; 8L |], generator = g))
    let x = randn([| 2L; 1L; 8L; 8L |], generator = g) * 0.5
    x.narrow(0L, 0L, 1L).narrow(2L, 0L, 3L).narrow(3L, 0L, 3L).fill_(Scalar.op_Implicit 1.5f) |> ignore
    x.narrow(0L, 1L, 1L).narrow(2L, 0L, 3L).narrow(3L, 0L, 3L).fill_(Scalar.op_Implicit -1.5f) |> ignore
    model, stats, x, tensor([| 0L; 1L |])

let private same (a: Tensor) (b: Tensor) = Seq.forall2 (=) a.shape b.shape && a.eq(b).all().item<bool>()

let private snapshot (model: nn.Module<Tensor, Tensor>) =
    model.state_dict() |> Seq.map (fun kv -> kv.Key, kv.Value.clone()) |> List.ofSeq

[<Tests>]
let tests =
    testList "information_bottleneck" [
        test "IBA puts its capacity where the output reads the activation (corner of channel 0) and ~0 bits elsewhere" {
            use scope = NewDisposeScope()
            let model, stats, x, t = corner ()
            use e = InformationBottleneck(stats).Explain(model, x, t, ExplainOptions())
            Expect.sequenceEqual e.Maps.shape [| 2L; 1L; 8L; 8L |] "input shape"
            for i in 0L .. 1L do
                let m = e.Maps.[i, 0L]
                let inside = m.narrow(0L, 0L, 3L).narrow(1L, 0L, 3L).mean().item<float32>()
                // beyond the smoothing kernel's reach (radius 2) from the corner
                let far = max (m.narrow(0L, 5L, 3L).max().item<float32>()) (m.narrow(1L, 5L, 3L).max().item<float32>())
                Expect.isGreaterThan inside 0.05f $"input {i}: bits where it matters ({inside})"
                Expect.isLessThan far (0.1f * inside) $"input {i}: near zero elsewhere ({far} vs {inside})"
            Expect.isTrue (e.Maps.ge(Scalar.op_Implicit 0.0f).all().item<bool>()) "capacity is a KL: non-negative"
            let bits = e.Diagnostics.["capacity_bits"]
            Expect.sequenceEqual bits.shape [| 2L |] "one capacity per input"
            Expect.isTrue (bits.gt(Scalar.op_Implicit 0.0f).all().item<bool>()) "positive capacity"
        }

        test "IBA leaves the model unchanged: same state dict, parameters still trainable, no gradients accumulated" {
            use scope = NewDisposeScope()
            manual_seed(7L) |> ignore
            let model = new FashionCnn()
            use g = new Generator(3UL, CPU)
            use stats = InformationBottleneck.EstimateActivationStatistics(model, InformationBottleneck.DefaultStage, rand([| 64L; 1L; 28L; 28L |], generator = g))
            let before = snapshot model
            use e = InformationBottleneck(stats).Explain(model, rand([| 2L; 1L; 28L; 28L |], generator = g), tensor([| 3L; 8L |]), ExplainOptions())
            Expect.sequenceEqual e.Maps.shape [| 2L; 1L; 28L; 28L |] "upsampled to the input"
            let after = snapshot model
            for (k, a), (_, b) in List.zip before after do
                Expect.isTrue (same a b) $"{k} unchanged"
            for p in model.parameters() do
                Expect.isTrue p.requires_grad "requires_grad restored"
                Expect.isTrue (match p.grad with null -> true | g -> g.abs().sum().item<float32>() = 0.0f) "no gradient on the parameters"
        }

        test "IBA is deterministic, invariant to the chunk size and to the other inputs of the batch, and leak-free" {
            use scope = NewDisposeScope()
            let model, stats, x, t = corner ()
            let iba = InformationBottleneck(stats)
            use a = iba.Explain(model, x, t, ExplainOptions(BatchSize = 10))
            use b = iba.Explain(model, x, t, ExplainOptions(BatchSize = 10))
            Expect.isTrue (same a.Maps b.Maps) "bit-identical twice"
            let live = DisposeScopeManager.Statistics.ThreadTotalLiveCount
            do
                use e = iba.Explain(model, x, t, ExplainOptions(BatchSize = 10))
                ()
            Expect.equal DisposeScopeManager.Statistics.ThreadTotalLiveCount live "no tensor leaks per explanation"
            use c = iba.Explain(model, x, t, ExplainOptions(BatchSize = 1000))
            use alone = iba.Explain(model, x.narrow(0L, 1L, 1L), t.narrow(0L, 1L, 1L), ExplainOptions(InputKeys = [| 1L |]))
            use other = iba.Explain(model, x, t, ExplainOptions(Seed = 1L))
            expectCloseOnScale 1e-5 a.Maps c.Maps "chunk invariance"
            expectCloseOnScale 1e-5 (a.Maps.narrow(0L, 1L, 1L)) alone.Maps "an input's map does not depend on its batch"
            Expect.isFalse (same a.Maps other.Maps) "the seed reaches the noise"
        }

        test "the final capacity falls as beta grows (0.1 -> 1000), on a fixed example" {
            use scope = NewDisposeScope()
            let model, stats, x, t = corner ()
            let capacity beta =
                use e = InformationBottleneck(stats, beta = beta).Explain(model, x, t, ExplainOptions())
                e.Diagnostics.["capacity_bits"].[0L].item<float32>()
            let caps = [ 0.1; 1.0; 10.0; 100.0; 1000.0 ] |> List.map capacity
            for lo, hi in List.pairwise caps do
                Expect.isLessThanOrEqual hi (lo * 1.0001f) $"monotone in beta: {caps}"
            Expect.isLessThan (List.last caps) (0.1f * List.head caps) $"large beta closes the bottleneck: {caps}"
        }

        test "the activation statistics are the per-element mean and unbiased std (>= 0.01) over the references, in chunks" {
            use scope = NewDisposeScope()
            use g = new Generator(9UL, CPU)
            let model = new CornerNet()
            let refs = randn([| 37L; 1L; 8L; 8L |], generator = g)
            refs.narrow(3L, 7L, 1L).zero_() |> ignore   // a dead column: std clamped, inactive
            use stats = InformationBottleneck.EstimateActivationStatistics(model, "features", refs, batchSize = 5)
            let r = refs.expand(37L, 4L, 8L, 8L)
            Expect.sequenceEqual stats.Mean.shape [| 4L; 8L; 8L |] "one activation's shape"
            Expect.isTrue (stats.Mean.allclose(r.mean([| 0L |]), 1e-5, 1e-6)) "mean"
            Expect.isTrue (stats.Std.allclose(r.std(0L, true, false).clamp_min(Scalar.op_Implicit 0.01), 1e-5, 1e-6)) "unbiased std, clamped at 0.01"
            Expect.equal (stats.Active.sum().item<float32>()) (4.0f * 8.0f * 7.0f) "the dead column is inactive"
            Expect.equal stats.ReferenceCount 37L "count"
        }

        test "IBA refuses a model that cannot be cut at a stage, names an unknown stage, and checks the statistics' shape" {
            let flat = tinyNet 1 4 5 2
            let model, stats, x, t = corner ()
            let e1 = Expect.throwsC (fun () -> InformationBottleneck(stats).Explain(flat, rand(1, 1, 2, 2), tensor([| 0L |]), ExplainOptions()) |> ignore) id
            Expect.stringContains e1.Message "ILayeredModel" "says what is needed"
            let e2 = Expect.throwsC (fun () -> InformationBottleneck.EstimateActivationStatistics(flat, "conv2", rand(4, 1, 2, 2)) |> ignore) id
            Expect.stringContains e2.Message "ILayeredModel" "the estimator too"
            let e3 = Expect.throwsC (fun () -> InformationBottleneck.EstimateActivationStatistics(model, "conv9", rand(4, 1, 8, 8)) |> ignore) id
            Expect.stringContains e3.Message "conv9" "names the stage"
            let e4 = Expect.throwsC (fun () -> InformationBottleneck(stats).Explain(model, rand(1, 1, 6, 6), tensor([| 0L |]), ExplainOptions()) |> ignore) id
            Expect.stringContains e4.Message "statistics" "statistics from another shape"
            stats.Dispose()
        }
    ]
