using System.Security.Cryptography;
using System.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace Attribution.Data;

/// <summary>
/// The training and test sets of an image folder. When the folder has no train/test split (<see cref="SeparateTest"/>
/// false), both are the same images: <see cref="Test"/> shares <see cref="Train"/>'s memory through its own tensor
/// handles, so either can be disposed first.
/// </summary>
public sealed record ImageFolderData(ImageDataset Train, ImageDataset Test, bool SeparateTest) : IDisposable
{
    public void Dispose()
    {
        Train.Dispose();
        Test.Dispose();
    }
}

/// <summary>
/// A user's images in torchvision's <c>ImageFolder</c> layout, <c>ROOT/&lt;class&gt;/&lt;image&gt;.png</c>, or split as
/// <c>ROOT/train/&lt;class&gt;/...</c> and <c>ROOT/test/&lt;class&gt;/...</c>, loaded with torchvision's conventions
/// (class order, image order, resize, crop, grayscale; see <see cref="ImageFolderOptions"/>) so that labels and pixels
/// agree with what a PyTorch user's <c>datasets.ImageFolder</c> gives. The files are only read.
/// </summary>
public static class ImageFolder
{
    /// <summary>
    /// Loads the images of <paramref name="root"/>. With a <see cref="ImageFolderOptions.Limit"/>, each split keeps at
    /// most that many images: one from each class in turn (the first files of each class, round robin in label order,
    /// a class that runs out leaving its turns to the others), so the classes stay as balanced as the folder allows; the
    /// kept images stay in torchvision's order (by class, then file). Every file's size is read before any is decoded,
    /// and the tensor is filled one image at a time.
    /// </summary>
    /// <exception cref="ArgumentException">The options are invalid.</exception>
    /// <exception cref="DirectoryNotFoundException">There is no folder at <paramref name="root"/>.</exception>
    /// <exception cref="InvalidDataException">
    /// The layout is wrong (no class folders, an empty class, train and test with different classes), a file does not
    /// decode, or images differ in size after the transforms; the message names the folder or the files.
    /// </exception>
    public static ImageFolderData Load(string root, ImageFolderOptions options)
    {
        var plan = Plan(root, options);
        var train = Decode(plan.Train, plan, options);
        if (plan.Test is null) return SharingTrain(train);
        try
        {
            return new ImageFolderData(train, Decode(plan.Test, plan, options), SeparateTest: true);
        }
        catch
        {
            train.Dispose();
            throw;
        }
    }

    /// <summary>A folder without a train/test split: the test set is the training set, through its own tensor handles.</summary>
    internal static ImageFolderData SharingTrain(ImageDataset train) =>
        new(train, new ImageDataset(train.Images.alias(), train.Labels.alias(), train.ClassNames), SeparateTest: false);

    /// <summary>The images of one split that <see cref="Load"/> keeps, in order, with their class names.</summary>
    internal sealed record SplitPlan(List<Item> Items, IReadOnlyList<string> ClassNames);

    /// <summary>What <see cref="Load"/> decodes: each split's images and the size every image has after the transforms.</summary>
    internal sealed record LoadPlan(SplitPlan Train, SplitPlan? Test, int Channels, int Height, int Width);

    /// <summary>Reads the layout and every file's header and checks them, as <see cref="Load"/> does before decoding anything.</summary>
    internal static LoadPlan Plan(string root, ImageFolderOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        var layout = ImageFolderLayout.Read(root);
        SplitPlan Of(SplitFolder split) => new(Select(split, options.Limit), split.Classes.Select(c => c.Name).ToArray());
        var train = Of(layout.Train);
        var test = layout.Test is { } testSplit ? Of(testSplit) : null;
        var (height, width) = CommonSize(train.Items.Concat(test?.Items ?? []), options);
        return new LoadPlan(train, test, options.ChannelCount, height, width);
    }

    /// <summary>
    /// Decodes the split's images in order and hands each to <paramref name="use"/> as float32 [C, H, W] in [0, 1]; the
    /// tensor is freed when <paramref name="use"/> returns.
    /// </summary>
    internal static void DecodeEach(SplitPlan split, LoadPlan plan, ImageFolderOptions options, Action<int, Tensor> use)
    {
        for (int i = 0; i < split.Items.Count; i++)
        {
            using var perImage = NewDisposeScope();
            var planes = ImageDecoder.Planes(split.Items[i].File.FullPath, options.Channels == ImageFolderOptions.Grayscale, out int h, out int w);
            use(i, ImageTransforms.Apply(planes, plan.Channels, h, w, options));
        }
    }

    /// <summary>
    /// The per-image shape [C, H, W] that <see cref="Load"/> will give, from the layout and the files' headers only
    /// (nothing decoded), with every check of the layout and of the sizes that <see cref="Load"/> makes: a spec is
    /// checked with it before any work.
    /// </summary>
    /// <exception cref="ArgumentException">The options are invalid.</exception>
    /// <exception cref="DirectoryNotFoundException">There is no folder at <paramref name="root"/>.</exception>
    /// <exception cref="InvalidDataException">As for <see cref="Load"/>, apart from files that do not decode.</exception>
    public static (int Channels, int Height, int Width, int Classes) InputShape(string root, ImageFolderOptions options)
    {
        var plan = Plan(root, options);
        return (plan.Channels, plan.Height, plan.Width, plan.Train.ClassNames.Count);
    }

    /// <summary>The class folders' names in label order (sorted as torchvision sorts them).</summary>
    /// <exception cref="DirectoryNotFoundException">There is no folder at <paramref name="root"/>.</exception>
    /// <exception cref="InvalidDataException">The layout is not an ImageFolder (as for <see cref="Load"/>).</exception>
    public static IReadOnlyList<string> ClassNames(string root) =>
        ImageFolderLayout.Read(root).Train.Classes.Select(c => c.Name).ToArray();

    /// <summary>
    /// A SHA-256 (lowercase hex) of what <see cref="Load"/> reads from <paramref name="root"/>: the layout, class names,
    /// and each image's path relative to its class folder, byte length and content. Moving the folder or adding files
    /// the loader ignores leaves it unchanged. The options are not part of it: a cache key adds them.
    /// </summary>
    /// <param name="root">The folder given to <see cref="Load"/>.</param>
    /// <param name="memoFolder">Where <see cref="IO.ContentHash.OfFile"/> memoises file hashes; null hashes every file every time.</param>
    /// <exception cref="DirectoryNotFoundException">There is no folder at <paramref name="root"/>.</exception>
    /// <exception cref="InvalidDataException">The layout is not an ImageFolder (as for <see cref="Load"/>).</exception>
    public static string ContentHash(string root, string? memoFolder = null)
    {
        var layout = ImageFolderLayout.Read(root);
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        // Every string is length-prefixed so that no two different layouts can give the same byte stream.
        void Add(string s)
        {
            var bytes = Encoding.UTF8.GetBytes(s);
            hash.AppendData(BitConverter.GetBytes((long)bytes.Length));
            hash.AppendData(bytes);
        }
        Add("image-folder/1");
        foreach (var (name, split) in new[] { ("train", layout.Train), ("test", layout.Test) })
        {
            Add(split is null ? $"{name}: shared" : name);
            if (split is null) continue;
            foreach (var cls in split.Classes)
            {
                Add($"class {cls.Name}: {cls.Images.Count}");
                foreach (var image in cls.Images)
                {
                    var sha = memoFolder is null ? IO.ContentHash.Sha256OfFile(image.FullPath) : IO.ContentHash.OfFile(image.FullPath, memoFolder);
                    Add($"{image.RelativePath}\n{new FileInfo(image.FullPath).Length}\n{sha}");
                }
            }
        }
        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }

    internal sealed record Item(ImageFile File, long Label);

    static List<Item> Select(SplitFolder split, int? limit)
    {
        var counts = split.Classes.Select(c => c.Images.Count).ToArray();
        var taken = limit is null ? counts : RoundRobin(counts, limit.Value);
        return split.Classes.SelectMany((cls, label) => cls.Images.Take(taken[label]).Select(f => new Item(f, label))).ToList();
    }

    static int[] RoundRobin(int[] counts, int limit)
    {
        var taken = new int[counts.Length];
        for (int left = Math.Min(limit, counts.Sum()); left > 0;)
            for (int k = 0; k < counts.Length && left > 0; k++)
                if (taken[k] < counts[k]) { taken[k]++; left--; }
        return taken;
    }

    static (int Height, int Width) CommonSize(IEnumerable<Item> items, ImageFolderOptions options)
    {
        (string Path, int Height, int Width, int OriginalHeight, int OriginalWidth)? first = null;
        foreach (var item in items)
        {
            var (h0, w0) = ImageDecoder.Size(item.File.FullPath);
            var (h, w) = ImageTransforms.OutputSize(h0, w0, options);
            if (first is not { } f) { first = (item.File.FullPath, h, w, h0, w0); continue; }
            if ((h, w) != (f.Height, f.Width))
                throw new InvalidDataException(
                    $"images differ in size{(options.Resize is null ? "" : " after resize")}: '{f.Path}' is {Describe(f.Height, f.Width, f.OriginalHeight, f.OriginalWidth)} "
                  + $"and '{item.File.FullPath}' is {Describe(h, w, h0, w0)} (height x width); a batch needs one size: add resize: [height, width] or center_crop");
        }
        return first is { } s ? (s.Height, s.Width) : throw new InvalidOperationException("a split without images passed the layout checks");
    }

    static string Describe(int h, int w, int h0, int w0) => (h, w) == (h0, w0) ? $"{h}x{w}" : $"{h}x{w} (decoded {h0}x{w0})";

    static ImageDataset Decode(SplitPlan split, LoadPlan plan, ImageFolderOptions options)
    {
        using var scope = NewDisposeScope();
        var images = empty([split.Items.Count, plan.Channels, plan.Height, plan.Width], ScalarType.Float32);
        DecodeEach(split, plan, options, (i, image) => images.select(0, i).copy_(image));
        var labels = tensor(split.Items.Select(item => item.Label).ToArray(), ScalarType.Int64);
        return new ImageDataset(images, labels, split.ClassNames);
    }
}
