namespace Attribution.Data;

/// <summary>An image of an ImageFolder: its path, and its path relative to its class folder with '/' separators.</summary>
internal sealed record ImageFile(string FullPath, string RelativePath);

/// <summary>A class folder: its name (the class name) and its images in torchvision's order.</summary>
internal sealed record ClassFolder(string Name, string FullPath, IReadOnlyList<ImageFile> Images);

/// <summary>One ImageFolder (a split): its classes in label order.</summary>
internal sealed record SplitFolder(string FullPath, IReadOnlyList<ClassFolder> Classes);

/// <summary>What a root holds: one ImageFolder used for both splits (<see cref="Test"/> null), or train/ and test/.</summary>
internal sealed record FolderLayout(SplitFolder Train, SplitFolder? Test);

/// <summary>
/// Finds the classes and images of an ImageFolder as torchvision's <c>ImageFolder</c> does (<c>find_classes</c>,
/// <c>make_dataset</c>): classes are the sub-folders sorted by code point, label k the k-th; a class's images are the
/// files with an accepted extension (any letter case) anywhere below its folder, ordered as <c>sorted(os.walk(...))</c>
/// then <c>sorted(files)</c> visit them: by folder path, then by file name. Unlike torchvision, names starting with
/// '.' (.ipynb_checkpoints, .DS_Store) are skipped: they are never meant as classes or images.
/// </summary>
internal static class ImageFolderLayout
{
    /// <summary>torchvision's image extensions that SkiaSharp decodes.</summary>
    public static readonly IReadOnlyList<string> Extensions = [".jpg", ".jpeg", ".png", ".bmp", ".webp"];

    // torchvision would read these through PIL, so skipping them silently would load fewer images than PyTorch does.
    static readonly string[] UndecodableExtensions = [".ppm", ".pgm", ".tif", ".tiff"];

    public const string TrainFolder = "train";
    public const string TestFolder = "test";

    /// <exception cref="DirectoryNotFoundException">There is no folder at <paramref name="root"/>.</exception>
    /// <exception cref="InvalidDataException">The layout is not an ImageFolder; the message names the folder at fault.</exception>
    public static FolderLayout Read(string root)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(root);
        var full = Path.GetFullPath(root);
        if (!Directory.Exists(full))
            throw new DirectoryNotFoundException($"image folder '{full}' does not exist (or is not a folder)");
        bool hasTrain = Directory.Exists(Path.Combine(full, TrainFolder));
        bool hasTest = Directory.Exists(Path.Combine(full, TestFolder));
        if (hasTrain != hasTest)
            throw new InvalidDataException(
                $"'{full}' has a '{(hasTrain ? TrainFolder : TestFolder)}' folder but no '{(hasTrain ? TestFolder : TrainFolder)}' folder; "
              + $"either give both ({full}/train/<class>/<image>.png and {full}/test/<class>/<image>.png) or put the class folders directly in '{full}'");
        if (!hasTrain) return new FolderLayout(ReadSplit(full), null);
        var train = ReadSplit(Path.Combine(full, TrainFolder));
        var test = ReadSplit(Path.Combine(full, TestFolder));
        var trainNames = train.Classes.Select(c => c.Name).ToArray();
        var testNames = test.Classes.Select(c => c.Name).ToArray();
        if (!trainNames.SequenceEqual(testNames))
        {
            var onlyTrain = trainNames.Except(testNames).ToArray();
            var onlyTest = testNames.Except(trainNames).ToArray();
            throw new InvalidDataException(
                $"'{train.FullPath}' and '{test.FullPath}' must have the same class folders (labels follow their names); "
              + $"only in train: {List(onlyTrain)}; only in test: {List(onlyTest)}");
        }
        return new FolderLayout(train, test);
    }

    static string List(string[] names) => names.Length == 0 ? "(none)" : string.Join(", ", names.Select(n => $"'{n}'"));

    static SplitFolder ReadSplit(string folder)
    {
        var classNames = Directory.EnumerateDirectories(folder).Select(Path.GetFileName).OfType<string>()
            .Where(n => !IsHidden(n)).OrderBy(n => n, CodePointOrder.Instance).ToArray();
        if (classNames.Length == 0)
            throw new InvalidDataException($"'{folder}' has no class folders; the ImageFolder layout is {folder}/<class>/<image>.png");
        var classes = classNames.Select(name =>
        {
            var classFolder = Path.Combine(folder, name);
            var images = ImagesBelow(classFolder);
            if (images.Count == 0)
                throw new InvalidDataException(
                    $"class folder '{classFolder}' holds no image; every class needs at least one file ending in {string.Join(", ", Extensions)}");
            return new ClassFolder(name, classFolder, images);
        }).ToArray();
        return new SplitFolder(folder, classes);
    }

    static List<ImageFile> ImagesBelow(string classFolder)
    {
        var folders = new List<(string Relative, string Full)>();
        CollectFolders(classFolder, "", folders, new HashSet<string>(StringComparer.Ordinal));
        folders.Sort((a, b) => CodePointOrder.Instance.Compare(a.Relative, b.Relative));
        var images = new List<ImageFile>();
        foreach (var (relative, full) in folders)
        {
            var names = Directory.EnumerateFiles(full).Select(Path.GetFileName).OfType<string>()
                .Where(n => !IsHidden(n)).OrderBy(n => n, CodePointOrder.Instance);
            foreach (var name in names)
            {
                var path = Path.Combine(full, name);
                var extension = Path.GetExtension(name).ToLowerInvariant();
                if (UndecodableExtensions.Contains(extension))
                    throw new InvalidDataException(
                        $"'{path}' is a {extension} image, which torchvision reads but this loader cannot decode; convert it to PNG (lossless) or remove it");
                if (Extensions.Contains(extension))
                    images.Add(new ImageFile(path, relative.Length == 0 ? name : $"{relative}/{name}"));
            }
        }
        return images;
    }

    // torchvision walks with followlinks=True; the set of resolved folders stops a link that points back up the tree.
    static void CollectFolders(string full, string relative, List<(string, string)> folders, HashSet<string> seen)
    {
        var resolved = new DirectoryInfo(full).ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? full;
        if (!seen.Add(resolved)) return;
        folders.Add((relative, full));
        foreach (var sub in Directory.EnumerateDirectories(full))
        {
            var name = Path.GetFileName(sub);
            if (IsHidden(name)) continue;
            CollectFolders(sub, relative.Length == 0 ? name : $"{relative}/{name}", folders, seen);
        }
    }

    static bool IsHidden(string name) => name.StartsWith('.');
}
