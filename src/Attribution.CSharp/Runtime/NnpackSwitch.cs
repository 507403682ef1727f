using System.Runtime.InteropServices;

namespace Attribution.Runtime;

/// <summary>
/// Turns libtorch's NNPACK convolutions off, as PyTorch's <c>torch.backends.nnpack.set_flags(False)</c> does. libtorch
/// 2.10 asks whether NNPACK is available before every float32 CPU convolution of a batch of 16 or more, and on a CPU
/// NNPACK does not support (this AMD EPYC) it logs "Could not initialize NNPACK! Reason: Unsupported hardware." each
/// time: over 5,000 lines in one run of the test suite, 1,840 in one run of the InputIBA randomisation check. Turned
/// off, libtorch skips the question and convolves with oneDNN or its own kernels, as it already does wherever NNPACK is
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
        if (Member("_ZN2at7Context20setUserEnabledNNPACKEb") is not (var context, var setEnabled)) return false;
        ((delegate* unmanaged<IntPtr, byte, void>)setEnabled)(context, 0);
        return Enabled() == false;
    }

    /// <summary>Whether NNPACK is on in the loaded libtorch (null where the symbols are not found).</summary>
    public static unsafe bool? Enabled() =>
        Member("_ZNK2at7Context17userEnabledNNPACKEv") is (var context, var isEnabled)
            ? ((delegate* unmanaged<IntPtr, byte>)isEnabled)(context) != 0
            : null;

    /// <summary>
    /// The loaded libtorch's global <c>at::Context</c> and the member function <paramref name="symbol"/> of it (which
    /// takes the context as its first argument); null where libtorch is not loaded or lacks either.
    /// </summary>
    static unsafe (IntPtr Context, IntPtr Function)? Member(string symbol)
    {
        try
        {
            var library = DlOpen("libtorch_cpu.so", RtldNow | RtldNoLoad);
            if (library == IntPtr.Zero
                || !NativeLibrary.TryGetExport(library, "_ZN2at13globalContextEv", out var globalContext)
                || !NativeLibrary.TryGetExport(library, symbol, out var function))
                return null;
            return (((delegate* unmanaged<IntPtr>)globalContext)(), function);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return null;
        }
    }
}
