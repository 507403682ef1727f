using System.Runtime.InteropServices;
using TorchSharp;

namespace Attribution.Runtime;

/// <summary>Which device a run asks for: <c>auto</c> picks CUDA when it is available.</summary>
public enum DeviceRequest { Auto, Cpu, Cuda }

/// <summary>
/// Loads the native libtorch once per process and resolves devices.
/// When <c>ATTRIBUTION_LIBTORCH</c> names a folder holding a CUDA build of libtorch (for example a pip
/// PyTorch's <c>torch/lib</c>), its libraries are loaded before TorchSharp initialises, so that TorchSharp's
/// glue binds to them instead of the CPU-only libtorch shipped in the NuGet package.
/// </summary>
public static class TorchRuntime
{
    /// <summary>The environment variable naming a folder with a CUDA libtorch.</summary>
    public const string LibTorchVariable = "ATTRIBUTION_LIBTORCH";

    // Order matters: each library's dependencies must already be loaded when it is.
    static readonly string[] CudaLibraries = ["libc10.so", "libtorch_cpu.so", "libc10_cuda.so", "libtorch_cuda.so", "libtorch.so"];

    static readonly object Gate = new();
    static bool initialised;
    static bool cudaLoaded;

    /// <summary>The environment variable giving libtorch's intra-op thread count (the CLI's --threads sets it).</summary>
    public const string ThreadsVariable = "ATTRIBUTION_THREADS";

    /// <summary>The folder named by <c>ATTRIBUTION_LIBTORCH</c>, if set.</summary>
    public static string? ExternalLibTorch => Environment.GetEnvironmentVariable(LibTorchVariable) is { Length: > 0 } d ? d : null;

    /// <summary>Loads libtorch (the external CUDA build when configured). Safe to call many times.</summary>
    public static void Initialise()
    {
        OneDnnIsa.Apply();
        NativeFallback.Register();
        lock (Gate)
        {
            if (initialised) return;
            if (ExternalLibTorch is { } folder)
            {
                foreach (var name in CudaLibraries)
                {
                    var path = Path.Combine(folder, name);
                    if (!File.Exists(path))
                        throw new InvalidOperationException(
                            $"{LibTorchVariable}={folder} but {name} is not there: point it at the 'lib' folder of a CUDA build of libtorch (e.g. a pip PyTorch's torch/lib), or unset it to use the CPU build.");
                    NativeLibrary.Load(path);
                }
                torch.InitializeDeviceType(DeviceType.CUDA);
                cudaLoaded = true;
            }
            ApplyThreads();
            // again here: a CUDA libtorch, or one TorchSharp found by itself, is loaded only now (NativeFallback switched
            // the one it preloaded)
            NnpackSwitch.TurnOff();
            initialised = true;
        }
    }

    /// <summary>
    /// Sets libtorch's intra-op threads: <c>ATTRIBUTION_THREADS</c> when set (a positive integer), otherwise the cores
    /// this process may use as .NET counts them (<see cref="Environment.ProcessorCount"/>: CPU affinity, a container's
    /// CPU quota, a Slurm allocation), where libtorch alone would take every core of the host; a set <c>OMP_NUM_THREADS</c>
    /// is left to libtorch. Measured on this 2-core
    /// machine (docs/performance.md): idle, 2 threads explain 1.6x as many images a second as 1; with the other core
    /// busy, 2 threads explain half as many as 1, since each parallel region waits for its descheduled thread. So
    /// processes that share cores (shards side by side) should each take --threads 1.
    /// </summary>
    static void ApplyThreads()
    {
        if (Environment.GetEnvironmentVariable(ThreadsVariable) is not { Length: > 0 } text)
        {
            // OpenMP's own variable, when a user set it, is libtorch's to read
            if (Environment.GetEnvironmentVariable("OMP_NUM_THREADS") is not { Length: > 0 })
                torch.set_num_threads(Math.Max(1, Environment.ProcessorCount));
            return;
        }
        if (!int.TryParse(text, out var threads) || threads < 1 || threads > 1024)
            throw new InvalidOperationException($"{ThreadsVariable}={text}: must be a whole number of threads between 1 and 1024");
        torch.set_num_threads(threads);
    }

    /// <summary>True when a CUDA device can be used in this process.</summary>
    public static bool CudaAvailable
    {
        get
        {
            Initialise();
            try { return cudaLoaded && torch.cuda.is_available(); }
            catch (Exception) { return false; }
        }
    }

    /// <summary>Resolves a request to a concrete device; asking for CUDA where there is none is an error that says why.</summary>
    public static torch.Device Resolve(DeviceRequest request)
    {
        Initialise();
        return request switch
        {
            DeviceRequest.Cpu => torch.CPU,
            DeviceRequest.Cuda when CudaAvailable => torch.CUDA,
            DeviceRequest.Cuda => throw new InvalidOperationException(
                ExternalLibTorch is null
                    ? $"device 'cuda' was asked for, but only the CPU build of libtorch is loaded: set {LibTorchVariable} to the folder of a CUDA libtorch (on the GPU machine, .gpu/run.sh does this)."
                    : $"device 'cuda' was asked for and the CUDA libtorch in {ExternalLibTorch} loaded, but no CUDA device is visible."),
            _ => CudaAvailable ? torch.CUDA : torch.CPU,
        };
    }

    /// <summary>A one-line description of the native runtime, for run records.</summary>
    public static string Describe(torch.Device device)
    {
        Initialise();
        var source = ExternalLibTorch is { } f ? $"libtorch from {f}" : "libtorch-cpu from the TorchSharp-cpu package";
        var isa = OneDnnIsa.Applied is { } cap && device.type == DeviceType.CPU ? $", oneDNN kernels up to {cap}" : "";
        return $"TorchSharp {typeof(torch).Assembly.GetName().Version}, {source}, device {device}, {torch.get_num_threads()} threads{isa}";
    }
}
