namespace Attribution.Data;

/// <summary>An axis-aligned box of pixels: rows Top .. Top + Height - 1, columns Left .. Left + Width - 1.</summary>
public sealed record Box(int Top, int Left, int Height, int Width)
{
    public int Area => Height * Width;
    public bool Contains(int row, int column) => row >= Top && row < Top + Height && column >= Left && column < Left + Width;
}
