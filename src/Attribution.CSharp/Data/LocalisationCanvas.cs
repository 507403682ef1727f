using static TorchSharp.torch;

namespace Attribution.Data;

/// <summary>How a localisation canvas is drawn.</summary>
/// <param name="Size">Side of the square canvas (56: four 28x28 items' worth).</param>
/// <param name="Fragments">Clutter: crops of other items placed outside the item's square.</param>
/// <param name="FragmentSize">Side of a fragment (a crop of another item).</param>
/// <param name="NoiseStd">Standard deviation of Gaussian pixel noise over the whole canvas, then clipped to [0, 1].</param>
/// <param name="BoxThreshold">The box is the tight box of the item's pixels above this value.</param>
public sealed record CanvasOptions(int Size = 56, int Fragments = 3, int FragmentSize = 10, double NoiseStd = 0.05, double BoxThreshold = 0.1);

/// <summary>
/// A localisation set for the Effective Heat Ratio: each canvas holds one item of a source set (e.g.
/// Fashion-MNIST) at a random position, with clutter (crops of other items, outside the item's square) and
/// noise. The label is the placed item's class; the box is the tight box of its pixels above
/// <see cref="CanvasOptions.BoxThreshold"/>. All draws come from one generator seeded with the given seed.
/// </summary>
public sealed class LocalisationCanvas : IDisposable
{
    LocalisationCanvas(ImageDataset images, Box[] boxes, Box[] placements, long[] sources)
    {
        Images = images; Boxes = boxes; Placements = placements; SourceIndices = sources;
    }

    /// <summary>Canvases [N, C, Size, Size] with the placed items' labels.</summary>
    public ImageDataset Images { get; }
    /// <summary>The tight box of each item on its canvas.</summary>
    public IReadOnlyList<Box> Boxes { get; }
    /// <summary>Where each item's whole square went.</summary>
    public IReadOnlyList<Box> Placements { get; }
    /// <summary>Index of each placed item in the source set.</summary>
    public IReadOnlyList<long> SourceIndices { get; }

    public static LocalisationCanvas Build(ImageDataset items, int count, long seed, CanvasOptions? options = null)
    {
        var o = options ?? new CanvasOptions();
        long c = items.Images.shape[1], h = items.Images.shape[2], w = items.Images.shape[3];
        if (o.Size < h || o.Size < w) throw new ArgumentException($"canvas {o.Size} is smaller than the items ({h}x{w})");
        if (o.FragmentSize > Math.Min(h, w)) throw new ArgumentException($"fragments ({o.FragmentSize}) must fit in an item ({h}x{w})");
        if (count < 0) throw new ArgumentOutOfRangeException(nameof(count), count, "count must be >= 0");
        using var scope = NewDisposeScope();
        using var g = new Generator((ulong)seed, CPU);
        int Draw(long below) => below <= 1 ? 0 : (int)randint(below, [1], generator: g).item<long>();
        var canvases = zeros(count, c, o.Size, o.Size);
        var boxes = new Box[count];
        var placements = new Box[count];
        var sources = new long[count];
        for (int i = 0; i < count; i++)
        {
            long source = Draw(items.Count);
            sources[i] = source;
            int top = Draw(o.Size - h + 1), left = Draw(o.Size - w + 1);
            var placement = new Box(top, left, (int)h, (int)w);
            placements[i] = placement;
            var canvas = canvases[i];
            for (int f = 0; f < o.Fragments; f++)
            {
                var other = items.Images[Draw(items.Count)];
                int r0 = Draw(h - o.FragmentSize + 1), c0 = Draw(w - o.FragmentSize + 1);
                // a position outside the item's square; a few tries, then the fragment is dropped
                for (int attempt = 0; attempt < 20; attempt++)
                {
                    int r = Draw(o.Size - o.FragmentSize + 1), q = Draw(o.Size - o.FragmentSize + 1);
                    bool overlaps = r < top + h && r + o.FragmentSize > top && q < left + w && q + o.FragmentSize > left;
                    if (overlaps) continue;
                    var patch = other.narrow(1, r0, o.FragmentSize).narrow(2, c0, o.FragmentSize);
                    var target = canvas.narrow(1, r, o.FragmentSize).narrow(2, q, o.FragmentSize);
                    target.copy_(maximum(target, patch));
                    break;
                }
            }
            var item = items.Images[source];
            canvas.narrow(1, top, h).narrow(2, left, w).copy_(item);
            boxes[i] = TightBox(item, o.BoxThreshold, placement);
        }
        if (o.NoiseStd > 0)
            canvases = (canvases + randn(canvases.shape, generator: g) * o.NoiseStd).clamp_(0, 1);
        var labels = items.Labels.index_select(0, tensor(sources));
        return new LocalisationCanvas(new ImageDataset(canvases, labels, items.ClassNames), boxes, placements, sources);
    }

    /// <summary>The tight box of the pixels (any channel) above <paramref name="threshold"/>; the whole square for an empty item.</summary>
    static Box TightBox(Tensor item, double threshold, Box placement)
    {
        using var scope = NewDisposeScope();
        var on = item.gt(threshold).any(0);                 // [h, w]
        var rows = on.any(1).nonzero().flatten().data<long>().ToArray();
        var cols = on.any(0).nonzero().flatten().data<long>().ToArray();
        if (rows.Length == 0) return placement;
        return new Box(placement.Top + (int)rows[0], placement.Left + (int)cols[0], (int)(rows[^1] - rows[0] + 1), (int)(cols[^1] - cols[0] + 1));
    }

    public void Dispose() => Images.Dispose();
}
