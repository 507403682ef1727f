/// Building engine methods: what a method needs besides its parameters (the class covariances, reference inputs, the explained model),
/// the engine's samplers for the spec's samplers, and a method run at a fixed output function. Method entries
/// (Methods/) build their engine methods from these.
module Experiments.Building

open System.Collections.Generic
open TorchSharp
open Attribution.Methods
open Attribution.Sampling
open Experiments

type Tensor = torch.Tensor

/// What building a method may need besides its parameters: class covariances (by jitter) and reference
/// inputs (a seeded random subset of the training images, of the given size).
type MethodContext =
    { Covariances: IDictionary<float, Attribution.Sampling.ClassCovariance>
      References: int -> Tensor
      /// The explained model (methods that estimate statistics of its activations need it).
      Model: torch.nn.Module<Tensor, Tensor>
      /// Class covariances of the training inputs in another structure than shared across channels (by jitter,
      /// structure), as the plan's structured covariance steps provided them.
      Structured: float -> Attribution.Sampling.CovarianceStructure -> Attribution.Sampling.ICovarianceModel }

/// Cor. 4.2's sampler on the spec's box: the class covariances (shared across channels, as estimated for the
/// covariance sampler) become one matrix over [C, H, W] per class, channels independent, scaled by `scale`.
let private conditionalSampler (c: ConditionalGaussianSpec) (shared: Attribution.Sampling.ClassCovariance) : ISampler =
    let top, left, height, width =
        match c.Box with
        | [ t; l; h; w ] -> int64 t, int64 l, int64 h, int64 w
        | other -> invalidArg "box" $"a box is [top, left, height, width], got {other}"
    if top + height > shared.Height || left + width > shared.Width then
        invalidArg "box" $"the box {c.Box} does not lie inside the {shared.Height}x{shared.Width} image"
    // Built outside a dispose scope: the sampler's own tensors must outlive this function.
    use perInput =
        use scope = torch.NewDisposeScope()
        let perPixel = shared.Covariances * c.Scale
        let joined =
            if shared.Channels = 1L then perPixel
            else
                let identity = torch.eye(shared.Channels, dtype = perPixel.dtype, device = perPixel.device)
                torch.stack([| for k in 0L .. perPixel.shape.[0] - 1L -> torch.kron(identity, perPixel.[k]) |], 0L)
        joined.MoveToOuterDisposeScope()
    use subset = torch.zeros([| shared.Channels; shared.Height; shared.Width |], dtype = torch.ScalarType.Bool)
    (use window = subset.narrow(1L, top, height).narrow(2L, left, width) in window.fill_(true) |> ignore)
    let rest = match c.Rest with RestFixed -> Attribution.Sampling.ConditionalRest.RestFixed | RestFromMarginal -> Attribution.Sampling.ConditionalRest.RestFromMarginal
    // The class covariances are already jittered; this jitter makes the Schur complement's factor safe too.
    new Attribution.Sampling.ConditionalGaussian(perInput, subset, rest, c.Jitter)

/// The engine's sampler for a shipped sampler (SamplerRegistry.build covers registered ones too).
let shippedSampler (spec: SamplerSpec) (context: MethodContext) : ISampler =
    match spec with
    | IsotropicGaussian stdev -> Attribution.Sampling.IsotropicGaussian(stdev)
    | CovarianceGaussian c ->
        match c.Structure with
        | SharedAcrossChannels -> Attribution.Sampling.CovarianceGaussian(context.Covariances.[c.Jitter], c.Scale)
        | PerChannel -> Attribution.Sampling.CovarianceGaussian(context.Structured c.Jitter (Attribution.Sampling.CovarianceStructure.PerChannel()), c.Scale)
        | FullMatrix -> Attribution.Sampling.CovarianceGaussian(context.Structured c.Jitter (Attribution.Sampling.CovarianceStructure.Full()), c.Scale)
        | LowRank -> Attribution.Sampling.CovarianceGaussian(context.Structured c.Jitter (Attribution.Sampling.CovarianceStructure.LowRankPlusDiagonal(c.Rank)), c.Scale)
    | BernoulliSuppression p -> Attribution.Sampling.BernoulliSuppression(p)
    | EpsilonSphere e -> Attribution.Sampling.EpsilonSphere(e)
    | ConditionalGaussian c -> conditionalSampler c context.Covariances.[c.Jitter]
    | RegisteredSampler r -> invalidArg "spec" $"the sampler '{r.Entry}' is registered: build it with SamplerRegistry.build"

/// A method run with a fixed output function, whatever the spec's: DeepLIFT's rules are defined on the
/// logits (the softmax couples all of them), so it explains the logit.
type FixedOutput(inner: IAttributionMethod, output: Attribution.Methods.OutputFunction) =
    interface IAttributionMethod with
        member _.Describe() = inner.Describe() + $" (f = {output})"
        member _.Explain(model, inputs, targets, options) =
            inner.Explain(model, inputs, targets, ExplainOptions(output, options.BatchSize, options.Seed, options.InputKeys))

