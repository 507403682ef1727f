using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Collections.Concurrent;
using System.Security.Cryptography;
using TorchSharp;
using static TorchSharp.torch;

namespace Attribution.Data;

/// <summary>
/// Fashion-MNIST (Xiao, Rasul and Vollgraf 2017): 28x28 grayscale clothing images in ten classes,
/// 60,000 for training and 10,000 for testing, read from the IDX files of Debian's package
/// <c>dataset-fashion-mnist</c>. No network access: the files are either there or the error says how to get them.
/// </summary>
public static class FashionMnist
{
    public const string DefaultRoot = "/usr/share/datasets/fashion-mnist";
    public const string DebianPackage = "dataset-fashion-mnist";

    /// <summary>Class names in label order (label k is ClassNames[k]).</summary>
    public static readonly IReadOnlyList<string> ClassNames = Array.AsReadOnly(new[]
    {
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    });

    private static readonly ConcurrentDictionary<string, string> HashCache = new();

    /// <summary>The image and label file paths for one split.</summary>
    public static (string Images, string Labels) Files(string? root, bool train)
    {
        var folder = root ?? DefaultRoot;
        var prefix = train ? "train" : "t10k";
        return (Path.Combine(folder, $"{prefix}-images-idx3-ubyte.gz"), Path.Combine(folder, $"{prefix}-labels-idx1-ubyte.gz"));
    }

    /// <summary>Loads a split: images float32 [N, 1, 28, 28] in [0, 1], labels int64 [N].</summary>
    /// <param name="root">Folder with the four .gz files; null for <see cref="DefaultRoot"/>.</param>
    /// <param name="train">True for the 60,000 training samples, false for the 10,000 test samples.</param>
    /// <param name="limit">Keep only the first <c>limit</c> samples (file order).</param>
    /// <exception cref="DataNotFoundException">A file is missing.</exception>
    /// <exception cref="InvalidDataException">A file is malformed; the message names it.</exception>
    public static ImageDataset Load(string? root, bool train, int? limit = null)
    {
        if (limit is < 0) throw new ArgumentOutOfRangeException(nameof(limit), limit, "FashionMnist.Load: limit must be >= 0 (or null for all samples).");
        var (imagesPath, labelsPath) = Files(root, train);
        var (labelDims, labelBytes) = IdxFile.ReadUBytes(labelsPath, 1, DebianPackage);
        var (imageDims, imageBytes) = IdxFile.ReadUBytes(imagesPath, 3, DebianPackage);
        if (imageDims[0] != labelDims[0])
            throw new InvalidDataException($"{imagesPath} holds {imageDims[0]} images but {labelsPath} holds {labelDims[0]} labels; the two files are from different splits or one is corrupt.");
        for (int i = 0; i < labelBytes.Length; i++)
            if (labelBytes[i] >= ClassNames.Count)
                throw new InvalidDataException($"{labelsPath}: label {labelBytes[i]} at index {i} is outside 0..{ClassNames.Count - 1}.");

        int n = Math.Min(limit ?? int.MaxValue, imageDims[0]);
        int h = imageDims[1], w = imageDims[2];
        // One tensor creation from the raw bytes, one conversion: per-pixel tensor calls would take minutes for 47M pixels.
        var pixels = n == imageDims[0] ? imageBytes : imageBytes.AsSpan(0, n * h * w).ToArray();
        var labels = n == labelDims[0] ? labelBytes : labelBytes.AsSpan(0, n).ToArray();
        using var scope = NewDisposeScope();
        // An explicit Scalar, disposed after the call: TorchSharp's implicit one is a temporary with a finaliser, which the
        // GC may run while the native division still reads it (seen once in CI: "Unknown scalar type", under the GC
        // pressure of these 188 MB of pixels).
        using var levels = 255f.ToScalar();
        var images = torch.tensor(pixels, new long[] { n, 1, h, w }, ScalarType.Byte).to(ScalarType.Float32).div_(levels);
        var targets = torch.tensor(labels, new long[] { n }, ScalarType.Byte).to(ScalarType.Int64);
        return new ImageDataset(images, targets, ClassNames);
    }

    /// <summary>
    /// SHA-256 (lower-case hex) of the image file's bytes followed by the label file's bytes, as stored
    /// (compressed): a cache key that changes when the data changes. Cached per path, length and write time.
    /// </summary>
    public static string ContentHash(string? root, bool train)
    {
        var (imagesPath, labelsPath) = Files(root, train);
        foreach (var p in new[] { imagesPath, labelsPath })
            if (!File.Exists(p)) throw new DataNotFoundException(p, DebianPackage);
        var images = new FileInfo(imagesPath);
        var labels = new FileInfo(labelsPath);
        var key = $"{images.FullName}|{images.Length}|{images.LastWriteTimeUtc.Ticks}|{labels.FullName}|{labels.Length}|{labels.LastWriteTimeUtc.Ticks}";
        return HashCache.GetOrAdd(key, _ =>
        {
            using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            var buffer = new byte[1 << 20];
            foreach (var p in new[] { imagesPath, labelsPath })
            {
                using var stream = File.OpenRead(p);
                for (int read; (read = stream.Read(buffer, 0, buffer.Length)) > 0;)
                    sha.AppendData(buffer, 0, read);
            }
            return Convert.ToHexStringLower(sha.GetHashAndReset());
        });
    }
}
