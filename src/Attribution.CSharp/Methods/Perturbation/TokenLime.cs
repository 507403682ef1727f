using Attribution.Models;
using static TorchSharp.torch;

namespace Attribution.Methods;

/// <summary>
/// LIME on text (Ribeiro et al. 2016; the InputIBA paper's text baseline): the interpretable features are the words of
/// an e-mail. A sample keeps each word with probability 1/2 and replaces the others by <c>&lt;unk&gt;</c> (the toolkit's
/// masking of a word, as in the token metrics), done on the embeddings the method explains ([B, T, E] for a
/// <see cref="TextModel"/>, [B, T, 1, E] for its view): a dropped position gets the <c>&lt;unk&gt;</c> embedding given to the constructor.
/// The surrogate is <see cref="Lime"/>'s: a weighted linear model with intercept, least squares (optional ridge), the
/// weight the exponential kernel on the cosine distance between the embeddings of the input and of the sample.
/// <para>Padding (<c>&lt;pad&gt;</c> embeds to the zero vector, and pads every text's end) is not a feature: it is
/// never replaced and scores 0, so a short e-mail's samples are spent on its words. A word's coefficient is spread
/// evenly over its embedding coordinates, so the token score (the sum over coordinates) is the coefficient.</para>
/// <para>Choices where the paper is silent (it uses LIME with its package's defaults, which delete words from a bag of
/// words with 5,000 samples and a kernel of width 25 on the cosine distance of those bags): words are positions, not
/// distinct words (a repeated word is two features, as the other methods score it); the kernel is Captum's (width 1
/// on the cosine distance of the inputs) and the sample count is the spec's.</para>
/// Each input's masks come from its own generator (seed, input key): the map does not depend on the batch.
/// </summary>
public sealed class TokenLime : IAttributionMethod
{
    public TokenLime(Tensor unknownEmbedding, int samples = 1000, double kernelWidth = 1.0, double ridge = 0.0)
    {
        ArgumentNullException.ThrowIfNull(unknownEmbedding);
        if (unknownEmbedding.dim() != 1) throw new ArgumentException($"lime on text: the <unk> embedding is a vector [E], got [{string.Join(", ", unknownEmbedding.shape)}]", nameof(unknownEmbedding));
        if (samples < 2) throw new ArgumentOutOfRangeException(nameof(samples), samples, "lime: at least two samples are needed");
        if (!(kernelWidth > 0)) throw new ArgumentOutOfRangeException(nameof(kernelWidth), kernelWidth, "lime: the kernel width must be positive");
        if (ridge < 0) throw new ArgumentOutOfRangeException(nameof(ridge), ridge, "lime: the ridge penalty cannot be negative");
        UnknownEmbedding = unknownEmbedding.detach().clone();
        Samples = samples; KernelWidth = kernelWidth; Ridge = ridge;
    }

    public Tensor UnknownEmbedding { get; }
    public int Samples { get; }
    public double KernelWidth { get; }
    public double Ridge { get; }

    public string Describe() =>
        $"lime (text): {Samples} samples, each word kept with probability 1/2 or replaced by <unk>, padding never a feature, " +
        $"cosine exponential kernel width {KernelWidth}, ridge {Ridge}; a word's score is its coefficient";

    public Explanation Explain(nn.Module<Tensor, Tensor> model, Tensor inputs, Tensor targets, ExplainOptions options)
    {
        if (inputs.dim() < 3 || inputs.shape[^1] != UnknownEmbedding.shape[0] || inputs.shape.Skip(2).SkipLast(1).Any(d => d != 1))
            throw new ArgumentException($"lime on text explains embeddings [B, T, E] or [B, T, 1, E] with E = {UnknownEmbedding.shape[0]}, got [{string.Join(", ", inputs.shape)}]");
        options.Check();
        using var scope = NewDisposeScope();
        long count = inputs.shape[0], positions = inputs.shape[1];
        var keys = options.Keys(count);
        var perPosition = new[] { positions }.Concat(inputs.shape.Skip(2).Select(_ => 1L)).ToArray();   // [T, 1, ...]
        var unknown = UnknownEmbedding.to(inputs.dtype, inputs.device);
        var words = TokenScores.Words(inputs).to(ScalarType.Float64);                                // [B, T]: 1 on a word

        // A word is dropped with probability 1/2; padding is always kept. Each input draws from its own generator.
        var masks = stack(Enumerable.Range(0, (int)count).Select(i =>
        {
            using var generator = options.GeneratorFor(keys[i], inputs.device);
            var keep = rand(new[] { (long)Samples, positions }, ScalarType.Float64, inputs.device, generator: generator).lt(0.5).to(ScalarType.Float64);
            return keep * words[i] + (1 - words[i]);
        }).ToList(), 0);                                                                                // [B, S, T]

        var values = zeros(count * Samples, ScalarType.Float64, inputs.device);
        var weights = zeros(count * Samples, ScalarType.Float64, inputs.device);
        PerturbationEngine.Sweep(model, inputs, targets, Samples, options,
            (i, first, n) =>
            {
                var keep = masks[i].narrow(0, first, n).to(inputs.dtype).view(new[] { n }.Concat(perPosition).ToArray());
                return inputs.narrow(0, i, 1) * keep + (1 - keep) * unknown;
            },
            chunk =>
            {
                var rows = chunk.InputIndex * Samples + chunk.PerturbationIndex;
                values.index_copy_(0, rows, chunk.Values.to(ScalarType.Float64));
                weights.index_copy_(0, rows, Lime.Similarity(inputs.index_select(0, chunk.InputIndex), chunk.Points, KernelWidth));
            });

        // Padding columns are constant (always kept) and would only duplicate the intercept: they enter the fit as
        // absent features (coefficient 0).
        var design = masks * words.unsqueeze(1);
        var coefficients = Lime.Fit(design, values.view(count, Samples), weights.view(count, Samples), Ridge, absent: 1 - words) * words;   // [B, T]
        return new Explanation(TokenScores.Spread(coefficients, inputs).MoveToOuterDisposeScope());
    }
}
