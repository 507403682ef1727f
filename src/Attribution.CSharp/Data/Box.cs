namespace Attribution.Data;

/// <summary>Where the object of an input is, for the localisation metrics: a set of pixels (row, column).</summary>
public interface IRegion
{
    /// <summary>Pixels in the region.</summary>
    int Area { get; }

    bool Contains(int row, int column);
}

/// <summary>An axis-aligned box of pixels: rows Top .. Top + Height - 1, columns Left .. Left + Width - 1.</summary>
public sealed record Box(int Top, int Left, int Height, int Width) : IRegion
{
    public int Area => Height * Width;
    public bool Contains(int row, int column) => row >= Top && row < Top + Height && column >= Left && column < Left + Width;
}

/// <summary>A region of any shape: one flag per pixel of an H x W image, row-major (a segmentation mask).</summary>
public sealed class PixelMask : IRegion
{
    readonly bool[] inside;

    public PixelMask(bool[] inside, int height, int width)
    {
        ArgumentNullException.ThrowIfNull(inside);
        if (height < 1 || width < 1 || inside.Length != height * width)
            throw new ArgumentException($"PixelMask: {inside.Length} flags for a {height} x {width} image");
        this.inside = inside;
        Height = height;
        Width = width;
        Area = inside.Count(v => v);
    }

    public int Height { get; }
    public int Width { get; }
    public int Area { get; }

    public bool Contains(int row, int column) => row >= 0 && row < Height && column >= 0 && column < Width && inside[row * Width + column];
}
