namespace Attribution.Data;

/// <summary>
/// How <see cref="ImageFolder.Load"/> turns image files into tensors, with torchvision's conventions: the equivalent of
/// <c>Compose([Grayscale()?, Resize(resize)?, CenterCrop(center_crop)?, ToTensor()])</c> on the images the default
/// loader opens.
/// </summary>
/// <param name="Resize">
/// torchvision's <c>Resize</c> (bilinear, antialiased): one number makes the shorter side that size and the longer side
/// <c>int(size * long / short)</c> (truncated); two numbers are [height, width]. Null keeps the decoded size.
/// </param>
/// <param name="CenterCrop">torchvision's <c>CenterCrop</c> after the resize: one number (a square) or [height, width]; zero padding where the crop is larger than the image.</param>
/// <param name="Channels"><c>"rgb"</c> (3 channels, R, G, B) or <c>"grayscale"</c> (1 channel, PIL's <c>convert("L")</c>).</param>
/// <param name="Limit">At most this many images per split (see <see cref="ImageFolder.Load"/> for which); null for all.</param>
public sealed record ImageFolderOptions(int[]? Resize = null, int[]? CenterCrop = null, string Channels = "rgb", int? Limit = null)
{
    public const string Rgb = "rgb";
    public const string Grayscale = "grayscale";

    /// <summary>Channels of the loaded images: 3 for rgb, 1 for grayscale.</summary>
    public int ChannelCount => Channels == Grayscale ? 1 : 3;

    /// <exception cref="ArgumentException">A size is not one or two positive numbers, the channels are unknown, or the limit is below 1.</exception>
    public void Validate()
    {
        CheckSize(Resize, "resize");
        CheckSize(CenterCrop, "center_crop");
        if (Channels is not (Rgb or Grayscale))
            throw new ArgumentException($"ImageFolderOptions: channels must be \"{Rgb}\" or \"{Grayscale}\"; got \"{Channels}\"", nameof(Channels));
        if (Limit is < 1)
            throw new ArgumentException($"ImageFolderOptions: limit must be at least 1; got {Limit}", nameof(Limit));
    }

    static void CheckSize(int[]? size, string name)
    {
        if (size is null) return;
        if (size.Length is not (1 or 2) || size.Any(s => s < 1))
            throw new ArgumentException($"ImageFolderOptions: {name} is one size or [height, width], each at least 1; got [{string.Join(", ", size)}]", name);
    }
}
