using System.Security.Cryptography;
using System.Text;
using TorchSharp;

namespace Attribution.Runtime;

/// <summary>
/// Every random stream of a run is derived from one global seed and the name of the unit that uses it
/// (data split, initialisation, noise of one method on one input, ...), so that adding a unit never
/// shifts the randomness of another, and the same spec gives the same numbers twice.
/// </summary>
public static class Seeds
{
    /// <summary>A 63-bit seed from the global seed and a unit id, stable across platforms and runs.</summary>
    public static long Derive(long globalSeed, string unit)
    {
        var bytes = SHA256.HashData(Encoding.UTF8.GetBytes($"{globalSeed}/{unit}"));
        return (long)(BitConverter.ToUInt64(bytes, 0) & 0x7FFF_FFFF_FFFF_FFFFUL);
    }

    /// <summary>A fresh generator on <paramref name="device"/> seeded from (global seed, unit).</summary>
    public static torch.Generator Generator(long globalSeed, string unit, torch.Device device) =>
        new((ulong)Derive(globalSeed, unit), device);
}
