using Attribution.Models;
using static TorchSharp.torch;

namespace Attribution.Data;

/// <summary>
/// What a data file holds: the training and test sets, and the test inputs' boxes when it has them. Tabular inputs
/// [N, F] are held as [N, 1, 1, F], one feature a pixel of a one-row image (so that pixel-wise methods and masking
/// metrics work feature by feature); <see cref="Tabular"/> says so, with the features' names.
/// </summary>
public sealed record TensorFileData(ImageDataset Train, ImageDataset Test, IRegion[]? Boxes, bool Tabular = false, IReadOnlyList<string>? FeatureNames = null);

/// <summary>
/// A user's image data set in one safetensors file: <c>train_inputs</c> and <c>test_inputs</c> [N, C, H, W] (float32 in
/// the model's pixel space, or uint8 scaled to [0, 1]), <c>train_labels</c> and <c>test_labels</c> [N] (integers
/// 0..K-1), optionally <c>test_boxes</c> [N, 4] (top, left, height, width, for localisation metrics) and the metadata
/// string <c>classes</c> (K names, comma-separated, in label order; default class_0 .. class_K-1). Tabular data has
/// inputs [N, F] instead, and optionally the metadata string <c>features</c> (F names, comma-separated).
/// </summary>
public static class TensorFile
{
    /// <summary>The training and test sets and the test boxes (null when the file has none).</summary>
    /// <exception cref="InvalidDataException">A tensor is missing or has the wrong shape or type; the message names it.</exception>
    public static TensorFileData Load(string path)
    {
        Dictionary<string, Tensor> tensors;
        IReadOnlyDictionary<string, string> metadata;
        try
        {
            tensors = Safetensors.Load(path);
            metadata = Safetensors.ReadMetadata(path);
        }
        catch (FileNotFoundException) { throw; }
        catch (InvalidDataException e) { throw new InvalidDataException($"{path}: {e.Message}", e); }
        try
        {
            Tensor Need(string name) => tensors.TryGetValue(name, out var t) ? t
                : throw new InvalidDataException($"{path} has no tensor '{name}'; a data file holds train_inputs, train_labels, test_inputs, test_labels (and optionally test_boxes)");
            var trainLabels = Labels(Need("train_labels"), "train_labels", path);
            var testLabels = Labels(Need("test_labels"), "test_labels", path);
            long classes = Math.Max(trainLabels.max().item<long>(), testLabels.max().item<long>()) + 1;
            if (trainLabels.min().item<long>() < 0 || testLabels.min().item<long>() < 0)
                throw new InvalidDataException($"{path}: labels must be 0..K-1; found a negative one");
            IReadOnlyList<string> names = metadata.TryGetValue("classes", out var text)
                ? text.Split(',').Select(n => n.Trim()).ToArray()
                : Enumerable.Range(0, (int)classes).Select(k => $"class_{k}").ToArray();
            if (names.Count < classes)
                throw new InvalidDataException($"{path}: metadata 'classes' names {names.Count} classes but the labels go up to {classes - 1}");
            var train = new ImageDataset(Inputs(Need("train_inputs"), "train_inputs", path), trainLabels, names);
            var test = new ImageDataset(Inputs(Need("test_inputs"), "test_inputs", path), testLabels, names);
            if (train.Images.shape.Skip(1).SequenceEqual(test.Images.shape.Skip(1)) is false)
                throw new InvalidDataException($"{path}: train_inputs [{string.Join(", ", train.Images.shape)}] and test_inputs [{string.Join(", ", test.Images.shape)}] differ in their per-input shape");
            if (train.Count != trainLabels.shape[0] || test.Count != testLabels.shape[0])
                throw new InvalidDataException($"{path}: inputs and labels differ in number");
            IRegion[]? boxes = null;
            if (tensors.TryGetValue("test_boxes", out var b))
            {
                if (b.dim() != 2 || b.shape[0] != test.Count || b.shape[1] != 4)
                    throw new InvalidDataException($"{path}: test_boxes must be [{test.Count}, 4] (top, left, height, width); got [{string.Join(", ", b.shape)}]");
                var v = b.to(ScalarType.Int64).data<long>().ToArray();
                boxes = Enumerable.Range(0, test.Count).Select(i => new Box((int)v[4 * i], (int)v[4 * i + 1], (int)v[4 * i + 2], (int)v[4 * i + 3])).ToArray();
            }
            if (tensors.TryGetValue("test_masks", out var m))
            {
                long h = test.Images.shape[2], w = test.Images.shape[3];
                if (boxes is not null)
                    throw new InvalidDataException($"{path}: has both test_boxes and test_masks; give one region per input");
                if (m.dim() != 3 || m.shape[0] != test.Count || m.shape[1] != h || m.shape[2] != w)
                    throw new InvalidDataException($"{path}: test_masks must be [{test.Count}, {h}, {w}] (non-zero inside the object); got [{string.Join(", ", m.shape)}]");
                var flags = m.ne(0).data<bool>().ToArray();
                int plane = (int)(h * w);
                boxes = Enumerable.Range(0, test.Count).Select(i => (IRegion)new PixelMask(flags[(i * plane)..((i + 1) * plane)], (int)h, (int)w)).ToArray();
            }
            bool tabular = tensors["test_inputs"].dim() == 2;
            IReadOnlyList<string>? features = null;
            if (tabular)
            {
                long f = test.Images.shape[3];
                features = metadata.TryGetValue("features", out var given)
                    ? given.Split(',').Select(n => n.Trim()).ToArray()
                    : Enumerable.Range(0, (int)f).Select(k => $"feature_{k}").ToArray();
                if (features.Count != f)
                    throw new InvalidDataException($"{path}: metadata 'features' names {features.Count} features but the inputs have {f}");
                if (boxes is not null)
                    throw new InvalidDataException($"{path}: test_boxes are for images; tabular inputs [N, F] have none");
            }
            return new TensorFileData(train, test, boxes, tabular, features);
        }
        finally
        {
            foreach (var t in tensors.Values) t.Dispose();
        }
    }

    static Tensor Inputs(Tensor t, string name, string path)
    {
        if (t.dim() == 2) t = t.reshape(t.shape[0], 1, 1, t.shape[1]);                 // tabular: a feature a pixel
        else if (t.dim() != 4) throw new InvalidDataException($"{path}: {name} must be images [N, C, H, W] or tabular [N, F]; got [{string.Join(", ", t.shape)}]");
        // An explicit Scalar kept alive over the division (an implicit temporary can be finalised during the native call).
        using var levels = TorchSharp.ScalarExtensionMethods.ToScalar(255.0);
        return t.dtype switch
        {
            ScalarType.Byte => t.to(ScalarType.Float32).div(levels),
            ScalarType.Float32 => t.clone(),
            ScalarType.Float64 or ScalarType.Float16 or ScalarType.BFloat16 => t.to(ScalarType.Float32),
            var other => throw new InvalidDataException($"{path}: {name} must be float or uint8; got {other}"),
        };
    }

    static Tensor Labels(Tensor t, string name, string path)
    {
        if (t.dim() != 1) throw new InvalidDataException($"{path}: {name} must be [N]; got [{string.Join(", ", t.shape)}]");
        if (t.is_floating_point()) throw new InvalidDataException($"{path}: {name} must be integers; got {t.dtype}");
        return t.to(ScalarType.Int64);
    }
}
