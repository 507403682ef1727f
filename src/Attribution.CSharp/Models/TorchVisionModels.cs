using TorchSharp;
using static TorchSharp.torch;

namespace Attribution.Models;

/// <summary>
/// The image classifiers of the TorchVision NuGet package by their PyTorch names, built with random weights: their
/// parameter names are PyTorch's, so a state dict saved from <c>torchvision.models.NAME()</c> loads into them
/// (<see cref="StateDict"/>). No weights are downloaded, ever.
/// </summary>
public static class TorchVisionModels
{
    static readonly IReadOnlyDictionary<string, Func<int, nn.Module<Tensor, Tensor>>> Builders =
        new SortedDictionary<string, Func<int, nn.Module<Tensor, Tensor>>>(StringComparer.Ordinal)
        {
            ["alexnet"] = k => torchvision.models.alexnet(num_classes: k),
            ["resnet18"] = k => torchvision.models.resnet18(num_classes: k),
            ["resnet34"] = k => torchvision.models.resnet34(num_classes: k),
            ["resnet50"] = k => torchvision.models.resnet50(num_classes: k),
            ["resnet101"] = k => torchvision.models.resnet101(num_classes: k),
            ["resnet152"] = k => torchvision.models.resnet152(num_classes: k),
            ["vgg11"] = k => torchvision.models.vgg11(num_classes: k),
            ["vgg11_bn"] = k => torchvision.models.vgg11_bn(num_classes: k),
            ["vgg13"] = k => torchvision.models.vgg13(num_classes: k),
            ["vgg13_bn"] = k => torchvision.models.vgg13_bn(num_classes: k),
            ["vgg16"] = k => torchvision.models.vgg16(num_classes: k),
            ["vgg16_bn"] = k => torchvision.models.vgg16_bn(num_classes: k),
            ["vgg19"] = k => torchvision.models.vgg19(num_classes: k),
            ["vgg19_bn"] = k => torchvision.models.vgg19_bn(num_classes: k),
        };

    /// <summary>The architectures one can name, sorted.</summary>
    public static IReadOnlyList<string> Names { get; } = Builders.Keys.ToArray();

    /// <summary>The parameter of the classifier's last layer, whose first dimension is the number of classes.</summary>
    public static string ClassifierWeight(string name) =>
        name.StartsWith("resnet", StringComparison.Ordinal) ? "fc.weight" : "classifier.6.weight";

    /// <summary>A freshly initialised <paramref name="name"/> with <paramref name="classes"/> outputs.</summary>
    /// <exception cref="ArgumentException">An unknown name; the message lists the known ones.</exception>
    public static nn.Module<Tensor, Tensor> Create(string name, int classes)
    {
        if (!Builders.TryGetValue(name, out var build))
            throw new ArgumentException($"torchvision has no architecture '{name}' here; known: {string.Join(", ", Names)}", nameof(name));
        if (classes < 1) throw new ArgumentOutOfRangeException(nameof(classes), classes, "at least one class");
        return build(classes);
    }
}
