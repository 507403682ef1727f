using static TorchSharp.torch;
namespace Attribution.Data;
/// <summary>TEMPORARY stand-in until the engine-io branch merges.</summary>
public sealed class ImageDataset : IDisposable
{
    public ImageDataset(Tensor images, Tensor labels, IReadOnlyList<string> classNames) { Images = images; Labels = labels; ClassNames = classNames; }
    public Tensor Images { get; }
    public Tensor Labels { get; }
    public IReadOnlyList<string> ClassNames { get; }
    public int Count => (int)Labels.shape[0];
    public void Dispose() { Images.Dispose(); Labels.Dispose(); }
}
