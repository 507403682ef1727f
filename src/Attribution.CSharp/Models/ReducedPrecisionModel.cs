using static TorchSharp.torch;

namespace Attribution.Models;

/// <summary>
/// A model whose arithmetic runs in a reduced floating-point type (bfloat16, float16) while its callers stay in
/// float32: <c>forward</c> casts floating inputs to that type, runs the model, and casts the outputs back to the
/// input's type. Both casts are differentiable, so an input gradient taken through this model is the reduced model's
/// gradient, delivered in float32. The model must already hold its parameters in the reduced type (pass a copy: the
/// float32 original is what metrics and reports use).
/// <para>Only outputs and input gradients are seen through it: a method that reads the model's stages or swaps its
/// rectifiers gets the plain model.</para>
/// </summary>
public sealed class ReducedPrecisionModel : nn.Module<Tensor, Tensor>
{
    readonly nn.Module<Tensor, Tensor> inner;

    /// <param name="inner">The model in <paramref name="dtype"/>, registered as a submodule.</param>
    /// <param name="dtype">The floating-point type the model computes in.</param>
    public ReducedPrecisionModel(nn.Module<Tensor, Tensor> inner, ScalarType dtype) : base(nameof(ReducedPrecisionModel))
    {
        ArgumentNullException.ThrowIfNull(inner);
        if (dtype is not (ScalarType.BFloat16 or ScalarType.Float16 or ScalarType.Float32 or ScalarType.Float64))
            throw new ArgumentException($"ReducedPrecisionModel: {dtype} is not a floating-point type", nameof(dtype));
        this.inner = inner;
        DType = dtype;
        RegisterComponents();
    }

    /// <summary>The type the model computes in.</summary>
    public ScalarType DType { get; }

    /// <summary>The wrapped model.</summary>
    public nn.Module<Tensor, Tensor> Inner => inner;

    public override Tensor forward(Tensor input)
    {
        if (!input.is_floating_point()) return inner.forward(input);
        using var reduced = input.to(DType);
        using var output = inner.forward(reduced);
        return output.to(input.dtype);
    }
}
