using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text.Json;
using static TorchSharp.torch;

namespace Attribution.Data;

/// <summary>
/// An image folder decoded once into raw float32 files, then mapped into memory (copy-on-write) on every load. The
/// images are read from the files as they are used, and the system may drop the pages again: a set of 50,000 images
/// at 3x224x224 (30 GB as floats) can be explained on a machine with less memory than that, and every process that
/// loads the same folder (Slurm shards, later runs) shares the one decoding. The pixels and labels are those of
/// <see cref="ImageFolder.Load"/>.
/// <para>The folder holds <c>train.f32</c> (and <c>test.f32</c> when the image folder has a split): the images
/// [N, C, H, W] as little-endian float32, one after another, and <c>decoded.json</c>, written last, with the shape,
/// labels, class names and each file's SHA-256. It is written under a temporary name and renamed into place, so a
/// killed decode leaves nothing that is later read, and two processes decoding at once both end with the same
/// folder. A load checks the files' sizes against the manifest; <see cref="Verify"/> also checks their content.</para>
/// </summary>
public static class DecodedImageFolder
{
    const int Format = 1;
    const string ManifestName = "decoded.json";

    sealed record SplitManifest(int Count, long[] Labels, string Sha256);

    sealed record Manifest(int Format, int Channels, int Height, int Width, string[] ClassNames, SplitManifest Train, SplitManifest? Test);

    /// <summary>
    /// The images of <paramref name="root"/> as <see cref="ImageFolder.Load"/> gives them, mapped from
    /// <paramref name="folder"/>, which is decoded first when it does not hold them. <paramref name="folder"/> must be
    /// keyed by the image folder's content and the options (a different folder or options need another one).
    /// </summary>
    /// <param name="root">The image folder.</param>
    /// <param name="options">How its files become tensors.</param>
    /// <param name="folder">Where the decoded images are (or will be) kept.</param>
    /// <param name="say">Progress lines (decoding, a damaged folder decoded again); null for none.</param>
    /// <exception cref="ArgumentException">As for <see cref="ImageFolder.Load"/>.</exception>
    /// <exception cref="DirectoryNotFoundException">As for <see cref="ImageFolder.Load"/>.</exception>
    /// <exception cref="InvalidDataException">As for <see cref="ImageFolder.Load"/>.</exception>
    public static ImageFolderData Load(string root, ImageFolderOptions options, string folder, Action<string>? say = null)
    {
        var (manifest, problem) = Read(folder);
        if (manifest is null)
        {
            if (problem is not null)
            {
                say?.Invoke($"{folder}: {problem}; decoding the images again");
                DeleteQuietly(folder);
            }
            Decode(root, options, folder, say);
            (manifest, problem) = Read(folder);
            if (manifest is null) throw new InvalidDataException($"{folder}: the images were decoded, but {problem ?? "the folder is missing"}");
        }
        return Map(folder, manifest);
    }

    /// <summary>Why the decoded images in <paramref name="folder"/> cannot be trusted (a file's size or content differs from its manifest), or null.</summary>
    public static string? Verify(string folder)
    {
        var (manifest, problem) = Read(folder);
        if (manifest is null) return problem ?? "no decoded images";
        foreach (var (name, split) in Splits(manifest))
        {
            using var stream = File.OpenRead(Path.Combine(folder, name));
            var sha = Convert.ToHexStringLower(SHA256.HashData(stream));
            if (sha != split.Sha256) return $"{name}: its content does not match its checksum";
        }
        return null;
    }

    static IEnumerable<(string File, SplitManifest Split)> Splits(Manifest m) =>
        m.Test is null ? [("train.f32", m.Train)] : [("train.f32", m.Train), ("test.f32", m.Test)];

    static long FloatsPerImage(Manifest m) => (long)m.Channels * m.Height * m.Width;

    /// <summary>The manifest, or null with why (null too when there is no folder at all).</summary>
    static (Manifest? Manifest, string? Problem) Read(string folder)
    {
        var path = Path.Combine(folder, ManifestName);
        if (!File.Exists(path)) return (null, Directory.Exists(folder) ? $"{ManifestName} is missing" : null);
        Manifest? m;
        try { m = JsonSerializer.Deserialize<Manifest>(File.ReadAllText(path)); }
        catch (JsonException e) { return (null, $"{ManifestName} is not valid ({e.Message})"); }
        if (m is null || m.Format != Format || m.ClassNames is null || m.Train is null)
            return (null, $"{ManifestName} is of another format");
        foreach (var (name, split) in Splits(m))
        {
            var file = new FileInfo(Path.Combine(folder, name));
            long expected = split.Count * FloatsPerImage(m) * sizeof(float);
            if (split.Labels is null || split.Labels.Length != split.Count) return (null, $"{ManifestName} has {split.Labels?.Length ?? 0} labels for {split.Count} images");
            if (!file.Exists) return (null, $"{name} is missing");
            if (file.Length != expected) return (null, $"{name} is {file.Length:N0} bytes, not the {expected:N0} of {split.Count} images of {m.Channels}x{m.Height}x{m.Width}");
        }
        return (m, null);
    }

    static ImageFolderData Map(string folder, Manifest m)
    {
        ImageDataset MapSplit(string name, SplitManifest split)
        {
            using var scope = NewDisposeScope();
            // not shared: a write into the images changes this process's copy of the page, never the file
            var flat = from_file(Path.Combine(folder, name), shared: false, size: split.Count * FloatsPerImage(m), dtype: ScalarType.Float32);
            return new ImageDataset(flat.view(split.Count, m.Channels, m.Height, m.Width), tensor(split.Labels, ScalarType.Int64), m.ClassNames);
        }
        var train = MapSplit("train.f32", m.Train);
        if (m.Test is null) return ImageFolder.SharingTrain(train);
        try { return new ImageFolderData(train, MapSplit("test.f32", m.Test), SeparateTest: true); }
        catch { train.Dispose(); throw; }
    }

    static void Decode(string root, ImageFolderOptions options, string folder, Action<string>? say)
    {
        var plan = ImageFolder.Plan(root, options);
        var parent = Path.GetDirectoryName(Path.GetFullPath(folder)) ?? ".";
        Directory.CreateDirectory(parent);
        var temporary = Path.Combine(parent, $"{Path.GetFileName(folder)}.tmp-{Guid.NewGuid():N}");
        Directory.CreateDirectory(temporary);
        try
        {
            var train = Write(plan.Train, plan, options, Path.Combine(temporary, "train.f32"), "train", say);
            var test = plan.Test is null ? null : Write(plan.Test, plan, options, Path.Combine(temporary, "test.f32"), "test", say);
            var manifest = new Manifest(Format, plan.Channels, plan.Height, plan.Width, plan.Train.ClassNames.ToArray(), train, test);
            File.WriteAllText(Path.Combine(temporary, ManifestName), JsonSerializer.Serialize(manifest));
            try { Directory.Move(temporary, folder); }
            // another process put the same images in place first: theirs serve, ours go
            catch (IOException) when (Directory.Exists(folder)) { }
        }
        finally
        {
            DeleteQuietly(temporary);
        }
    }

    static SplitManifest Write(ImageFolder.SplitPlan split, ImageFolder.LoadPlan plan, ImageFolderOptions options, string file, string name, Action<string>? say)
    {
        int count = split.Items.Count;
        // a line about every tenth of a large split, so that a long decode shows that it moves
        int every = Math.Max(1000, count / 10);
        say?.Invoke($"data: decoding {count:N0} {name} images ({plan.Channels}x{plan.Height}x{plan.Width}, {count * FloatsPerImage(plan) * sizeof(float) / 1e6:N0} MB as float32)");
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        using (var stream = new FileStream(file, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20))
        {
            var floats = new float[FloatsPerImage(plan)];
            ImageFolder.DecodeEach(split, plan, options, (i, image) =>
            {
                image.contiguous().data<float>().CopyTo(floats, 0);
                var bytes = MemoryMarshal.AsBytes(floats.AsSpan());
                if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("decoded images are stored little-endian");
                stream.Write(bytes);
                hash.AppendData(bytes);
                if ((i + 1) % every == 0 && i + 1 < count) say?.Invoke($"data: decoded {i + 1:N0} of {count:N0} {name} images");
            });
            stream.Flush(flushToDisk: true);
        }
        return new SplitManifest(count, split.Items.Select(item => item.Label).ToArray(), Convert.ToHexStringLower(hash.GetHashAndReset()));
    }

    static long FloatsPerImage(ImageFolder.LoadPlan plan) => (long)plan.Channels * plan.Height * plan.Width;

    static void DeleteQuietly(string folder)
    {
        try { if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }
}
