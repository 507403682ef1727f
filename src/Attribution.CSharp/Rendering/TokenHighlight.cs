using Attribution.Data;
using static TorchSharp.torch;

namespace Attribution.Rendering;

/// <summary>
/// One text of a token heatmap: its tokens, one score per token, and what the caption states (the true label, the
/// model's prediction, the method that produced the scores), as in Gat et al. (2022), Table 2 and Fig. 3.
/// </summary>
public sealed record TokenHighlight(IReadOnlyList<string> Tokens, IReadOnlyList<float> Scores, string Label, string Prediction, string Method)
{
    /// <summary>"label ham, predicted spam, FI (Sigma)".</summary>
    public string Caption => $"label {Label}, predicted {Prediction}, {Method}";

    /// <summary>
    /// Row <paramref name="index"/> of <paramref name="data"/> with its real tokens only (padding left out) and their
    /// scores from <paramref name="scores"/> [N, T] or [T] (e.g. <see cref="Methods.TokenScores.Sum"/>), the label and
    /// prediction spelled by the dataset's class names.
    /// </summary>
    public static TokenHighlight FromDataset(TextDataset data, int index, Tensor scores, long predictedClass, string method)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(scores);
        if (index < 0 || index >= data.Count)
            throw new ArgumentOutOfRangeException(nameof(index), index, $"TokenHighlight.FromDataset: index must be in [0, {data.Count}).");
        using var scope = NewDisposeScope();
        var row = scores.dim() == 2 ? scores[index] : scores;
        if (row.dim() != 1 || row.shape[0] != data.MaxLength)
            throw new ArgumentException($"TokenHighlight.FromDataset: scores must be [N, {data.MaxLength}] or [{data.MaxLength}]; got [{string.Join(", ", scores.shape)}]", nameof(scores));
        int length = (int)data.Lengths[index].item<long>();
        var ids = data.Tokens[index].data<long>().Take(length).ToArray();
        var values = row.narrow(0, 0, length).to(ScalarType.Float32).cpu().data<float>().ToArray();
        return new TokenHighlight(ids.Select(data.Vocabulary.TokenOf).ToArray(), values,
                                  ClassName(data, data.Labels[index].item<long>()), ClassName(data, predictedClass), method);
    }

    static string ClassName(TextDataset data, long c) => c >= 0 && c < data.ClassNames.Count ? data.ClassNames[(int)c] : c.ToString();
}
