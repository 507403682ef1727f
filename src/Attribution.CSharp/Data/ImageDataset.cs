using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using TorchSharp;
using static TorchSharp.torch;

namespace Attribution.Data;

/// <summary>
/// A labelled image set held in memory: <see cref="Images"/> float32 [N, C, H, W] scaled to [0, 1],
/// <see cref="Labels"/> int64 [N]. The dataset owns both tensors (they are detached from any dispose
/// scope when it is built) and frees them in <see cref="Dispose"/>.
/// </summary>
public sealed class ImageDataset : IDisposable
{
    public Tensor Images { get; }
    public Tensor Labels { get; }
    public IReadOnlyList<string> ClassNames { get; }
    public int Count => (int)Labels.shape[0];

    /// <exception cref="ArgumentException">Shapes or dtypes do not match the contract above.</exception>
    public ImageDataset(Tensor images, Tensor labels, IReadOnlyList<string> classNames)
    {
        ArgumentNullException.ThrowIfNull(images);
        ArgumentNullException.ThrowIfNull(labels);
        ArgumentNullException.ThrowIfNull(classNames);
        if (images.dim() != 4 || images.dtype != ScalarType.Float32)
            throw new ArgumentException($"ImageDataset: images must be float32 [N, C, H, W]; got {images.dtype} [{string.Join(", ", images.shape)}]. Convert with .to(float32) and add the channel axis with .unsqueeze(1).", nameof(images));
        if (labels.dim() != 1 || labels.dtype != ScalarType.Int64)
            throw new ArgumentException($"ImageDataset: labels must be int64 [N]; got {labels.dtype} [{string.Join(", ", labels.shape)}]. Convert with .to(int64).", nameof(labels));
        if (images.shape[0] != labels.shape[0])
            throw new ArgumentException($"ImageDataset: {images.shape[0]} images but {labels.shape[0]} labels; both must have the same first dimension.", nameof(labels));
        // Ownership moves here: a caller's scope must not free tensors the dataset still serves.
        Images = images.DetachFromDisposeScope();
        Labels = labels.DetachFromDisposeScope();
        ClassNames = classNames;
    }

    /// <summary>The first <paramref name="n"/> samples (all of them if fewer), as a new dataset with its own copies.</summary>
    public ImageDataset Take(int n)
    {
        if (n < 0) throw new ArgumentOutOfRangeException(nameof(n), n, "ImageDataset.Take: n must be >= 0.");
        long k = Math.Min(n, Count);
        using var scope = NewDisposeScope();
        return new ImageDataset(Images.narrow(0, 0, k).clone(), Labels.narrow(0, 0, k).clone(), ClassNames);
    }

    /// <summary>The samples at <paramref name="indices"/>, in that order (repeats allowed), as a new dataset.</summary>
    public ImageDataset Select(long[] indices)
    {
        ArgumentNullException.ThrowIfNull(indices);
        foreach (var i in indices)
            if (i < 0 || i >= Count)
                throw new ArgumentOutOfRangeException(nameof(indices), i, $"ImageDataset.Select: index {i} is outside [0, {Count}).");
        using var scope = NewDisposeScope();
        using var index = torch.tensor(indices, ScalarType.Int64);
        return new ImageDataset(Images.index_select(0, index), Labels.index_select(0, index), ClassNames);
    }

    public void Dispose()
    {
        Images.Dispose();
        Labels.Dispose();
    }
}
