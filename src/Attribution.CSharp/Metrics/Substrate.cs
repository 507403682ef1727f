using static TorchSharp.torch;

namespace Attribution.Metrics;

/// <summary>
/// What replaces a feature in insertion and deletion (Petsiuk et al. 2018, RISE): a closed set of choices.
/// </summary>
public abstract record Substrate
{
    private Substrate() { }

    /// <summary>A short name for reports: <c>black</c> or <c>blur(sigma)</c>.</summary>
    public abstract string Name { get; }

    /// <summary>The substrate image of every input, shaped like <paramref name="inputs"/> [B, C, H, W].</summary>
    public abstract Tensor Of(Tensor inputs);

    /// <summary>
    /// A constant image, by default 0. With inputs in [0, 1] pixel units (as the toolkit's datasets are)
    /// 0 is black; with normalised inputs 0 would be the dataset-mean colour instead.
    /// </summary>
    public sealed record Black(double Value = 0.0) : Substrate
    {
        public override string Name => Value == 0.0 ? "black" : $"constant({Value})";
        public override Tensor Of(Tensor inputs) => full_like(inputs, Value);
    }

    /// <summary>
    /// The input blurred with a Gaussian of standard deviation <c>Sigma</c> pixels (Sturmfels et al. 2020; NeFLAG,
    /// Li et al. 2023, App. A.2: sigma = 20, kernel size not stated). Kernel side default: 2 ceil(3 sigma) + 1,
    /// borders replicated (see <see cref="GaussianBlur"/>).
    /// </summary>
    public sealed record Blurred(double Sigma = 20.0, int? KernelSize = null) : Substrate
    {
        public override string Name => $"blur({Sigma})";
        public override Tensor Of(Tensor inputs) => GaussianBlur.Apply(inputs, Sigma, KernelSize);
    }
}
