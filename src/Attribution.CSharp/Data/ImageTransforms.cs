using TorchSharp;
using static TorchSharp.torch;

namespace Attribution.Data;

/// <summary>
/// torchvision's <c>Resize</c> and <c>CenterCrop</c> on a uint8 image, followed by <c>ToTensor</c>'s scaling to [0, 1]:
/// the sizes follow torchvision's rules, and the resize interpolates on the values 0..255 then rounds and clamps them
/// back to bytes, as torchvision does for a uint8 tensor.
/// </summary>
internal static class ImageTransforms
{
    /// <summary>The height and width an image of <paramref name="height"/> x <paramref name="width"/> has after the transforms.</summary>
    public static (int Height, int Width) OutputSize(int height, int width, ImageFolderOptions options)
    {
        if (options.CenterCrop is { } crop) return Pair(crop);
        return ResizedSize(height, width, options.Resize);
    }

    /// <summary>
    /// torchvision's <c>_compute_resized_output_size</c>: one number is the new shorter side, and the longer side is
    /// <c>int(size * long / short)</c>, truncated, keeping the aspect ratio as closely as whole pixels allow from below.
    /// </summary>
    public static (int Height, int Width) ResizedSize(int height, int width, int[]? resize)
    {
        if (resize is null) return (height, width);
        if (resize.Length == 2) return (resize[0], resize[1]);
        int shortSide = Math.Min(height, width), longSide = Math.Max(height, width);
        int newShort = resize[0];
        int newLong = (int)((double)((long)newShort * longSide) / shortSide);
        return width <= height ? (newLong, newShort) : (newShort, newLong);
    }

    /// <summary>Bytes [C, H, W] to float32 [C, H', W'] in [0, 1] after the resize and the centre crop of <paramref name="options"/>.</summary>
    public static Tensor Apply(byte[] planes, int channels, int height, int width, ImageFolderOptions options)
    {
        using var scope = NewDisposeScope();
        var x = tensor(planes, [1, channels, height, width]).to(ScalarType.Float32);
        var (h, w) = ResizedSize(height, width, options.Resize);
        if ((h, w) != (height, width))
            x = nn.functional.interpolate(x, [h, w], mode: InterpolationMode.Bilinear, align_corners: false, antialias: true)
                .round().clamp(0, 255);
        if (options.CenterCrop is { } crop)
        {
            var (ch, cw) = Pair(crop);
            x = CentreCrop(x, ch, cw);
        }
        using var levels = 255f.ToScalar();     // explicit: an implicit temporary can be finalised during the native call
        return x.squeeze(0).div(levels).MoveToOuterDisposeScope();
    }

    static (int, int) Pair(int[] size) => size.Length == 1 ? (size[0], size[0]) : (size[0], size[1]);

    /// <summary>
    /// torchvision's <c>center_crop</c>: the window starts at <c>round((size - crop) / 2)</c> with Python's round
    /// (ties to even); along an axis where the crop is larger than the image, the image is padded with zeros,
    /// <c>(crop - size) // 2</c> before it and the rest after it.
    /// </summary>
    static Tensor CentreCrop(Tensor x, int cropHeight, int cropWidth)
    {
        var (rowSource, rowTarget, rows) = CropAxis((int)x.shape[2], cropHeight);
        var (colSource, colTarget, cols) = CropAxis((int)x.shape[3], cropWidth);
        var output = zeros(x.shape[0], x.shape[1], cropHeight, cropWidth);
        output.narrow(2, rowTarget, rows).narrow(3, colTarget, cols)
            .copy_(x.narrow(2, rowSource, rows).narrow(3, colSource, cols));
        return output;
    }

    static (int Source, int Target, int Length) CropAxis(int size, int crop) =>
        crop > size
            ? (0, (crop - size) / 2, size)
            : ((int)Math.Round((size - crop) / 2.0, MidpointRounding.ToEven), 0, crop);
}
