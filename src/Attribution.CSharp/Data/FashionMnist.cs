using System.IO.Compression;
using static TorchSharp.torch;
namespace Attribution.Data;
/// <summary>TEMPORARY stand-in until the engine-io branch merges.</summary>
public static class FashionMnist
{
    public const string DefaultRoot = "/usr/share/datasets/fashion-mnist";
    public static readonly IReadOnlyList<string> ClassNames = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];
    static byte[] Read(string p) { using var s = new GZipStream(File.OpenRead(p), CompressionMode.Decompress); using var m = new MemoryStream(); s.CopyTo(m); return m.ToArray(); }
    public static ImageDataset Load(string? root, bool train, int? limit = null)
    {
        root ??= DefaultRoot; var pre = train ? "train" : "t10k";
        var img = Read(Path.Combine(root, pre + "-images-idx3-ubyte.gz")); var lab = Read(Path.Combine(root, pre + "-labels-idx1-ubyte.gz"));
        int n = lab.Length - 8; if (limit is { } l) n = Math.Min(n, l);
        var x = tensor(img.AsSpan(16, n * 784).ToArray(), [n, 1, 28, 28]).to(ScalarType.Float32).div(255);
        var y = tensor(lab.AsSpan(8, n).ToArray(), [n]).to(ScalarType.Int64);
        return new ImageDataset(x, y, ClassNames);
    }
}
