using SkiaSharp;

namespace Attribution.Rendering;

/// <summary>
/// Scores of a text's tokens to colours: each score divided by the largest absolute score of its own text, so the
/// text's strongest token is the diverging map's end colour (red for positive, blue for negative) and zero is white.
/// The maximum, not a percentile as for images (<see cref="MapNormalisation"/>): a text has few tokens, and the
/// one that matters most is exactly the one a percentile clip would merge with its neighbours.
/// </summary>
public static class TokenColours
{
    /// <summary>The sentence every token heatmap states as its normalisation.</summary>
    public const string NormalisationStatement =
        "Colour = score / max |score| over the tokens of the same text (each text scaled on its own): red positive, blue negative, white zero; colours compare tokens within a text, not across texts or methods.";

    /// <summary>scores / max |scores| in [-1, 1]; all zeros stay zero. Throws on a non-finite score.</summary>
    public static float[] Normalise(IReadOnlyList<float> scores)
    {
        ArgumentNullException.ThrowIfNull(scores);
        double max = 0;
        for (int i = 0; i < scores.Count; i++)
        {
            if (!float.IsFinite(scores[i]))
                throw new ArgumentException($"Token score {i} is {scores[i]}; a heatmap needs finite scores. Find where the method produced it rather than rendering it.", nameof(scores));
            max = Math.Max(max, Math.Abs(scores[i]));
        }
        return scores.Select(s => max > 0 ? (float)Math.Clamp(s / max, -1.0, 1.0) : 0f).ToArray();
    }

    /// <summary>
    /// "max |score| 1.163e-10": printed beside every caption, because scaling each text on its own makes rounding
    /// noise look like a pattern (SmoothGrad's word scores on a transformer are exactly that; docs/data.md).
    /// </summary>
    public static string ScaleNote(IReadOnlyList<float> scores)
    {
        ArgumentNullException.ThrowIfNull(scores);
        float max = scores.Count == 0 ? 0f : scores.Max(Math.Abs);
        return "max |score| " + max.ToString("G4", System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>Background colour of a normalised score s in [-1, 1].</summary>
    public static SKColor Background(float s) => Colormaps.Diverging(s);

    /// <summary>Black or white, whichever reads better on <paramref name="background"/> (relative luminance, sRGB weights).</summary>
    public static SKColor Foreground(SKColor background) =>
        0.2126 * background.Red + 0.7152 * background.Green + 0.0722 * background.Blue < 128 ? SKColors.White : SKColors.Black;

    /// <summary>"#rrggbb".</summary>
    public static string Hex(SKColor c) => $"#{c.Red:x2}{c.Green:x2}{c.Blue:x2}";
}
