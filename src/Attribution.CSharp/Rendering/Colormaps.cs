using System;
using SkiaSharp;

namespace Attribution.Rendering;

/// <summary>
/// Small colour lookup tables, linearly interpolated. Inferno (van der Walt and Smith, matplotlib) is
/// perceptually uniform and readable in grayscale; the diverging map follows ColorBrewer's RdBu with a
/// pure white centre so that zero attribution is exactly white.
/// </summary>
public static class Colormaps
{
    // matplotlib's inferno sampled at 0, 0.1, ..., 1.
    private static readonly SKColor[] Inferno =
    {
        new(0x00, 0x00, 0x04), new(0x16, 0x0b, 0x39), new(0x42, 0x0a, 0x68), new(0x6a, 0x17, 0x6e),
        new(0x93, 0x26, 0x67), new(0xbc, 0x37, 0x54), new(0xdd, 0x51, 0x3a), new(0xf3, 0x78, 0x19),
        new(0xfc, 0xa5, 0x0a), new(0xf6, 0xd7, 0x46), new(0xfc, 0xff, 0xa4),
    };

    // -1 (dark blue) ... 0 (white) ... +1 (dark red).
    private static readonly SKColor[] BlueWhiteRed =
    {
        new(0x05, 0x30, 0x61), new(0x21, 0x66, 0xac), new(0x43, 0x93, 0xc3), new(0x92, 0xc5, 0xde), new(0xd1, 0xe5, 0xf0),
        new(0xff, 0xff, 0xff),
        new(0xfd, 0xdb, 0xc7), new(0xf4, 0xa5, 0x82), new(0xd6, 0x60, 0x4d), new(0xb2, 0x18, 0x2b), new(0x67, 0x00, 0x1f),
    };

    /// <summary>The colour of the largest value in the absolute view.</summary>
    public static SKColor InfernoTop => Inferno[^1];
    /// <summary>The colour of zero in the absolute view.</summary>
    public static SKColor InfernoBottom => Inferno[0];
    /// <summary>Colours of -1 and +1 in the signed view.</summary>
    public static SKColor SignedNegative => BlueWhiteRed[0];
    public static SKColor SignedPositive => BlueWhiteRed[^1];

    /// <summary>Sequential colour for t in [0, 1].</summary>
    public static SKColor Sequential(float t) => Lookup(Inferno, t);

    /// <summary>Diverging colour for s in [-1, 1].</summary>
    public static SKColor Diverging(float s) => Lookup(BlueWhiteRed, (s + 1f) / 2f);

    private static SKColor Lookup(SKColor[] table, float t)
    {
        float x = Math.Clamp(float.IsNaN(t) ? 0f : t, 0f, 1f) * (table.Length - 1);
        int i = Math.Min((int)x, table.Length - 2);
        float f = x - i;
        SKColor a = table[i], b = table[i + 1];
        byte Mix(byte u, byte v) => (byte)Math.Round(u + f * (v - u));
        return new SKColor(Mix(a.Red, b.Red), Mix(a.Green, b.Green), Mix(a.Blue, b.Blue));
    }
}
