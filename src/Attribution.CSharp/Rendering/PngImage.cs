using System;
using Attribution.IO;
using SkiaSharp;

namespace Attribution.Rendering;

/// <summary>Writes a grayscale image as a PNG, atomically, for quick looks at inputs and masks.</summary>
public static class PngImage
{
    /// <summary>Saves [h, w] row-major values in [0, 1] (clipped), each pixel upscaled to a <paramref name="scale"/> x <paramref name="scale"/> block.</summary>
    public static void SaveGrayscale(string path, float[] pixels, int h, int w, int scale)
    {
        ArgumentNullException.ThrowIfNull(pixels);
        if (h <= 0 || w <= 0 || scale <= 0)
            throw new ArgumentOutOfRangeException(nameof(scale), $"PngImage.SaveGrayscale: h, w and scale must be positive; got h={h}, w={w}, scale={scale}.");
        if (pixels.Length != h * w)
            throw new ArgumentException($"PngImage.SaveGrayscale: {pixels.Length} values, expected h x w = {h}x{w} = {h * w}.", nameof(pixels));
        using var bitmap = new SKBitmap(new SKImageInfo(w * scale, h * scale, SKColorType.Rgba8888, SKAlphaType.Premul));
        for (int y = 0; y < h * scale; y++)
            for (int x = 0; x < w * scale; x++)
            {
                float v = pixels[(y / scale) * w + x / scale];
                byte g = (byte)Math.Round(Math.Clamp(float.IsNaN(v) ? 0f : v, 0f, 1f) * 255f);
                bitmap.SetPixel(x, y, new SKColor(g, g, g));
            }
        using var data = bitmap.Encode(SKEncodedImageFormat.Png, 100);
        AtomicFile.WriteAllBytes(path, data.ToArray());
    }
}
