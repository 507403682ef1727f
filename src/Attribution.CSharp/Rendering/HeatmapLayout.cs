namespace Attribution.Rendering;

/// <summary>
/// Pixel geometry of a <see cref="HeatmapGrid"/> image: a caption column on the left, column titles on
/// top, square cells (input first, then one per method), a footer stating the normalisation.
/// Fixed sizes (text shrinks or wraps to fit) so that the geometry does not depend on the installed fonts.
/// </summary>
public sealed record HeatmapLayout(int Columns, int Rows, int CellSize)
{
    public const int Pad = 8;
    public const int Gap = 4;
    public const int CaptionWidth = 150;
    public const int TitleHeight = 30;
    public const int FooterHeight = 46;

    public int Width => Pad + CaptionWidth + Columns * CellSize + (Columns - 1) * Gap + Pad;
    public int Height => Pad + TitleHeight + Rows * CellSize + (Rows - 1) * Gap + FooterHeight + Pad;

    /// <summary>Top-left pixel of the cell in <paramref name="row"/> and <paramref name="column"/> (column 0 is the input image).</summary>
    public (int X, int Y) CellOrigin(int row, int column) =>
        (Pad + CaptionWidth + column * (CellSize + Gap), Pad + TitleHeight + row * (CellSize + Gap));
}
