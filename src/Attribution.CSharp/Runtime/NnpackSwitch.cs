using System.Runtime.InteropServices;

namespace Attribution.Runtime;

/// <summary>
/// Turns libtorch's NNPACK convolutions off, as PyTorch's <c>torch.backends.nnpack.set_flags(False)</c> does. libtorch
/// 2.10 asks whether NNPACK is available before every float32 CPU convolution of a batch of 16 or more, and on a CPU
/// NNPACK does not support (this AMD EPYC) it logs "Could not initialize NNPACK! Reason: Unsupported hardware." each
/// time: 5,419 lines in one run of the test suite, 1,840 in one run of the InputIBA randomisation check. Turned off,
/// libtorch skips the question and convolves with oneDNN or its own kernels, as it already does wherever NNPACK is
/// unsupported; where NNPACK works, convolutions no longer depend on the batch size's crossing 16 for their backend.
/// TorchSharp has no binding for the switch, so <c>at::Context::setUserEnabledNNPACK</c> of the libtorch already
/// loaded is called directly (found by its soname, so a CUDA libtorch from ATTRIBUTION_LIBTORCH is the one switched).
/// </summary>
public static class NnpackSwitch
{
    const int RtldNow = 2, RtldNoLoad = 4;

    [DllImport("libc", EntryPoint = "dlopen")]
    static extern IntPtr DlOpen([MarshalAs(UnmanagedType.LPUTF8Str)] string name, int flags);

    /// <summary>Turns NNPACK off in the loaded libtorch; whether it is off now (false where the symbols are not found).</summary>
    public static unsafe bool TurnOff()
    {
        try
        {
            var library = DlOpen("libtorch_cpu.so", RtldNow | RtldNoLoad);
            if (library == IntPtr.Zero
                || !NativeLibrary.TryGetExport(library, "_ZN2at13globalContextEv", out var globalContext)
                || !NativeLibrary.TryGetExport(library, "_ZN2at7Context20setUserEnabledNNPACKEb", out var setEnabled)
                || !NativeLibrary.TryGetExport(library, "_ZNK2at7Context17userEnabledNNPACKEv", out var isEnabled))
                return false;
            // at::globalContext() returns the Context&; its member functions take it as their first argument
            var context = ((delegate* unmanaged<IntPtr>)globalContext)();
            ((delegate* unmanaged<IntPtr, byte, void>)setEnabled)(context, 0);
            return ((delegate* unmanaged<IntPtr, byte>)isEnabled)(context) == 0;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return false;
        }
    }

    /// <summary>Whether NNPACK is on in the loaded libtorch (null where the symbols are not found).</summary>
    public static unsafe bool? Enabled()
    {
        var library = DlOpen("libtorch_cpu.so", RtldNow | RtldNoLoad);
        if (library == IntPtr.Zero
            || !NativeLibrary.TryGetExport(library, "_ZN2at13globalContextEv", out var globalContext)
            || !NativeLibrary.TryGetExport(library, "_ZNK2at7Context17userEnabledNNPACKEv", out var isEnabled))
            return null;
        var context = ((delegate* unmanaged<IntPtr>)globalContext)();
        return ((delegate* unmanaged<IntPtr, byte>)isEnabled)(context) != 0;
    }
}
