using SkiaSharp;

namespace Attribution.Data;

/// <summary>
/// Decodes image files with SkiaSharp into what torchvision's default loader sees: PIL's
/// <c>Image.open(path).convert("RGB")</c>, then <c>convert("L")</c> for grayscale. Like PIL, it applies no colour
/// profile and no EXIF rotation, and it drops alpha rather than compositing it over a background: the colour values are
/// read unpremultiplied, exactly as stored.
/// </summary>
internal static class ImageDecoder
{
    /// <summary>Height and width from the file's header, without decoding its pixels.</summary>
    /// <exception cref="InvalidDataException">The file is not an image SkiaSharp can read; the message names it.</exception>
    public static (int Height, int Width) Size(string path)
    {
        using var codec = Open(path);
        return (codec.Info.Height, codec.Info.Width);
    }

    /// <summary>The pixels as bytes [channels, height, width]: R, G, B planes, or one luma plane when <paramref name="grayscale"/>.</summary>
    /// <exception cref="InvalidDataException">The file does not decode; the message names it.</exception>
    public static byte[] Planes(string path, bool grayscale, out int height, out int width)
    {
        using var codec = Open(path);
        height = codec.Info.Height;
        width = codec.Info.Width;
        long pixels = (long)height * width;
        if (pixels <= 0 || pixels * 4 > Array.MaxLength)
            throw new InvalidDataException($"'{path}' is {height}x{width} (height x width), which this loader cannot hold in one array");
        // Unpremultiplied: premultiplying would scale the colours of translucent pixels by their alpha.
        var info = new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        var rgba = new byte[pixels * 4];
        var result = codec.GetPixels(info, rgba);
        if (result != SKCodecResult.Success)
            throw new InvalidDataException($"'{path}' does not decode as an image ({result}); the file may be truncated or damaged");
        return grayscale ? Luma(rgba, (int)pixels) : RgbPlanes(rgba, (int)pixels);
    }

    static SKCodec Open(string path)
    {
        SKCodec? codec;
        SKCodecResult result;
        try { codec = SKCodec.Create(path, out result); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new InvalidDataException($"'{path}' cannot be read: {e.Message}", e);
        }
        return codec ?? throw new InvalidDataException($"'{path}' does not decode as an image ({result}); it may be damaged or not an image despite its extension");
    }

    static byte[] RgbPlanes(byte[] rgba, int pixels)
    {
        var planes = new byte[3 * pixels];
        for (int i = 0; i < pixels; i++)
        {
            planes[i] = rgba[4 * i];
            planes[pixels + i] = rgba[4 * i + 1];
            planes[2 * pixels + i] = rgba[4 * i + 2];
        }
        return planes;
    }

    // PIL's convert("L"): ITU-R 601-2 luma L = 0.299 R + 0.587 G + 0.114 B in 16-bit fixed point (the weights
    // 19595, 38470, 7471 sum to 65536), rounded half up by adding 0x8000 before the shift.
    static byte[] Luma(byte[] rgba, int pixels)
    {
        var plane = new byte[pixels];
        for (int i = 0; i < pixels; i++)
            plane[i] = (byte)((rgba[4 * i] * 19595 + rgba[4 * i + 1] * 38470 + rgba[4 * i + 2] * 7471 + 0x8000) >> 16);
        return plane;
    }
}
