using static TorchSharp.torch;

namespace Attribution.Models;

/// <summary>Fixed position encodings for sequence models that see all positions at once.</summary>
public static class PositionEncoding
{
    /// <summary>
    /// The sinusoidal encoding of Vaswani et al. (2017, Sec. 3.5), [T, E]: PE(p, 2i) = sin(p / 10000^(2i/E)),
    /// PE(p, 2i+1) = cos(p / 10000^(2i/E)). A constant (no gradient), defined for any T, so a model is not tied to
    /// the sequence length it was trained on.
    /// </summary>
    public static Tensor Sinusoidal(long positions, int width, ScalarType dtype, Device device)
    {
        if (positions < 1 || width < 1)
            throw new ArgumentOutOfRangeException(nameof(positions), $"PositionEncoding.Sinusoidal: positions and width must be positive; got {positions}, {width}");
        using var scope = NewDisposeScope();
        var p = arange(positions, ScalarType.Float64, device).unsqueeze(1);                          // [T, 1]
        var pair = arange(width, ScalarType.Int64, device).div(2, rounding_mode: RoundingMode.floor);  // i of coordinate 2i and 2i+1
        var angle = p * exp(pair.to(ScalarType.Float64) * (-2.0 * Math.Log(10000.0) / width)).unsqueeze(0);
        var even = arange(width, ScalarType.Int64, device).remainder(2).eq(0).unsqueeze(0);
        return where(even, sin(angle), cos(angle)).to(dtype).MoveToOuterDisposeScope();
    }
}
