using System.Runtime.InteropServices;

namespace Attribution.Runtime;

/// <summary>
/// Caps oneDNN, libtorch's CPU convolution library, at the AVX2 instruction set, before libtorch creates its first
/// convolution. libtorch 2.10's bundled oneDNN computes wrong input gradients for some convolutions with its AVX-512
/// kernels on AMD EPYC processors: the input gradient of a 3 -> 8 channel, 3 x 3 convolution of 32 x 32 images was
/// 66% off its float64 value at 1 thread, and the saliency and Integrated Gradients maps of an RGB model changed with
/// the thread count (found by the tests that compare maps with PyTorch's, 2026-12-03). With AVX2 kernels the same
/// gradients agree with float64 to 4e-7. Models on 1-channel inputs were not affected, which is why the bug went unseen.
/// </summary>
/// <remarks>
/// oneDNN reads its cap from the environment when it first dispatches a kernel, so it is set in this process's native
/// environment (setenv: .NET's Environment.SetEnvironmentVariable does not reach native code on Linux). A cap the user
/// set (<c>ONEDNN_MAX_CPU_ISA</c> or <c>DNNL_MAX_CPU_ISA</c>) is left as it is. CUDA is not affected.
/// </remarks>
public static class OneDnnIsa
{
    /// <summary>The cap applied when the user set none.</summary>
    public const string Cap = "AVX2";

    static readonly string[] Variables = ["ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA"];

    [DllImport("libc", EntryPoint = "setenv", CharSet = CharSet.Ansi)]
    static extern int SetEnv(string name, string value, int overwrite);

    [DllImport("libc", EntryPoint = "getenv", CharSet = CharSet.Ansi)]
    static extern IntPtr GetEnv(string name);

    /// <summary>The cap oneDNN sees: the user's, this class's, or none (not x86-64 Linux).</summary>
    public static string? Applied { get; private set; }

    /// <summary>Sets the cap unless the user set one; safe to call many times.</summary>
    public static void Apply()
    {
        if (!OperatingSystem.IsLinux() || RuntimeInformation.ProcessArchitecture != Architecture.X64) return;
        foreach (var name in Variables)
            if (GetEnv(name) is var set && set != IntPtr.Zero)
            {
                Applied = Marshal.PtrToStringAnsi(set);
                return;
            }
        foreach (var name in Variables) SetEnv(name, Cap, 0);
        Applied = Cap;
    }
}
