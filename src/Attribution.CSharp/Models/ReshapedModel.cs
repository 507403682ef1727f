using static TorchSharp.torch;

namespace Attribution.Models;

/// <summary>
/// A model seen through another input shape: <c>forward</c> takes inputs [B, ...viewShape] and hands the inner
/// model the same numbers reshaped to [B, ...modelShape]. Methods and samplers that think in [B, C, H, W] (the
/// class covariance is shared across the C axis) then work on other modalities unchanged: text embeddings
/// [B, T, E] are seen as [B, T, 1, E] (one covariance over the embedding, shared by every position, as in
/// Functional Information, App. B) and waveforms [B, 1, L] as frames [B, L/w, 1, w] (one covariance over a frame,
/// shared by every frame). The reshape is a view, so gradients flow through it unchanged.
/// <para>Stages (<see cref="ILayeredModel"/>) and rectifier swaps (<see cref="IRectifiedModel"/>) are passed on to
/// the inner model when it has them; otherwise they throw a <see cref="NotSupportedException"/> naming it. Only the
/// input side is reshaped (ForwardTo, and ForwardStage of the first stage): activations keep the inner model's shapes,
/// e.g. a text model's per-position stage is [B, T, H] whether it is reached through the view or not.</para>
/// </summary>
public sealed class ReshapedModel : nn.Module<Tensor, Tensor>, ILayeredModel, IRectifiedModel
{
    readonly nn.Module<Tensor, Tensor> inner;
    readonly long[] modelShape;
    readonly long[] viewShape;

    /// <param name="inner">The model, registered as a submodule (so the view's mode and parameters are the model's).</param>
    /// <param name="modelShape">The inner model's per-example input shape (without the batch axis).</param>
    /// <param name="viewShape">The per-example shape callers use; same number of elements.</param>
    public ReshapedModel(nn.Module<Tensor, Tensor> inner, long[] modelShape, long[] viewShape) : base(nameof(ReshapedModel))
    {
        ArgumentNullException.ThrowIfNull(inner);
        ArgumentNullException.ThrowIfNull(modelShape);
        ArgumentNullException.ThrowIfNull(viewShape);
        if (modelShape.Aggregate(1L, (a, b) => a * b) != viewShape.Aggregate(1L, (a, b) => a * b))
            throw new ArgumentException($"ReshapedModel: [{string.Join(", ", modelShape)}] and [{string.Join(", ", viewShape)}] hold different numbers of elements");
        this.inner = inner;
        this.modelShape = modelShape;
        this.viewShape = viewShape;
        // Registered so that eval(), parameters() and to(device) on the view reach the model.
        RegisterComponents();
    }

    /// <summary>The wrapped model.</summary>
    public nn.Module<Tensor, Tensor> Inner => inner;

    /// <summary>The per-example shape callers use.</summary>
    public IReadOnlyList<long> ViewShape => viewShape;

    /// <summary>Inputs [B, ...view] reshaped for the inner model: [B, ...model].</summary>
    public Tensor ToModel(Tensor view) => view.reshape(modelShape.Prepend(view.shape[0]).ToArray());

    /// <summary>Inputs [B, ...model] reshaped to the view: [B, ...view].</summary>
    public Tensor ToView(Tensor input) => input.reshape(viewShape.Prepend(input.shape[0]).ToArray());

    public override Tensor forward(Tensor input)
    {
        CheckView(input);
        return inner.forward(ToModel(input));
    }

    void CheckView(Tensor input)
    {
        if (input.dim() != viewShape.Length + 1 || !input.shape.Skip(1).SequenceEqual(viewShape))
            throw new ArgumentException($"ReshapedModel expects inputs [B, {string.Join(", ", viewShape)}]; got [{string.Join(", ", input.shape)}]");
    }

    ILayeredModel Layered => inner as ILayeredModel
        ?? throw new NotSupportedException($"{inner.GetType().Name} has no named stages: layer-based methods and metrics (Grad-CAM, IBA, parameter randomisation) do not apply to it");

    IRectifiedModel Rectified => inner as IRectifiedModel
        ?? throw new NotSupportedException($"{inner.GetType().Name} has no swappable ReLUs: rule-based methods (Guided Backprop, Deconvnet, DeepLIFT, DeepSHAP) do not apply to it");

    public IReadOnlyList<string> Stages => Layered.Stages;
    public IReadOnlyList<string> ParameterStages => Layered.ParameterStages;
    public Tensor ForwardTo(string stage, Tensor input) { CheckView(input); return Layered.ForwardTo(stage, ToModel(input)); }
    public Tensor ForwardFrom(string stage, Tensor activation) => Layered.ForwardFrom(stage, activation);
    /// <summary>The first stage takes the input, which arrives in the view's shape; later stages take the inner model's activations.</summary>
    public Tensor ForwardStage(string stage, Tensor activation) =>
        Layered.Stages.Count > 0 && Layered.Stages[0] == stage && ViewMatches(activation)
            ? Layered.ForwardStage(stage, ToModel(activation))
            : Layered.ForwardStage(stage, activation);

    bool ViewMatches(Tensor input) => input.dim() == viewShape.Length + 1 && input.shape.Skip(1).SequenceEqual(viewShape);
    public void Reinitialise(string stage, Generator generator) => Layered.Reinitialise(stage, generator);
    public IDisposable UseRectifier(Func<Tensor, Tensor> rectifier) => Rectified.UseRectifier(rectifier);
    public IDisposable UseMaxPool(Func<Tensor, long, Tensor> pool) => Rectified.UseMaxPool(pool);
}
