using System.Runtime.InteropServices;

namespace Attribution.Performance;

/// <summary>
/// Peak GPU memory in use, as the CUDA driver counts it for a device's current memory pool: the pool's high watermark
/// of memory handed out (<c>CU_MEMPOOL_ATTR_USED_MEM_HIGH</c>), which <see cref="ResetPeak"/> sets back to what is in
/// use now, so that each measured piece of work gets its own peak.
/// <para>libtorch allocates from that pool only with its stream-ordered allocator, chosen before the first CUDA
/// allocation by <c>PYTORCH_CUDA_ALLOC_CONF=backend:cudaMallocAsync</c> (<see cref="LibTorchAllocatesFromPool"/>). Its
/// default caching allocator keeps its own counters (PyTorch's <c>torch.cuda.max_memory_allocated</c>), which
/// TorchSharp 0.107 does not expose, and takes its memory with plain cudaMalloc, outside every pool.</para>
/// <para>The driver (libcuda.so.1) is loaded on first use; without it (no GPU here), or when nothing has come from the
/// pool, the figures are null.</para>
/// </summary>
public static unsafe class CudaMemoryPool
{
    const int Success = 0;           // CUDA_SUCCESS
    const int UsedMemoryHigh = 8;    // CU_MEMPOOL_ATTR_USED_MEM_HIGH, a cuuint64_t

    /// <summary>The environment variable through which libtorch's CUDA allocator is chosen.</summary>
    public const string AllocatorSetting = "PYTORCH_CUDA_ALLOC_CONF";

    /// <summary>The setting that makes libtorch allocate from the driver's pool, and so makes the peak measurable.</summary>
    public const string PoolAllocator = "backend:cudaMallocAsync";

    /// <summary>Whether this process's environment asks libtorch to allocate from the driver's pool.</summary>
    public static bool LibTorchAllocatesFromPool => AllocatesFromPool(Environment.GetEnvironmentVariable(AllocatorSetting));

    /// <summary>
    /// Whether a value of <see cref="AllocatorSetting"/> (comma-separated <c>key:value</c> options, as libtorch reads
    /// them) chooses the backend <c>cudaMallocAsync</c>.
    /// </summary>
    public static bool AllocatesFromPool(string? setting) =>
        setting is not null
        && setting.Split(',').Select(option => option.Split(':')).Any(kv =>
               kv.Length == 2 && kv[0].Trim() == "backend" && kv[1].Trim() == "cudaMallocAsync");

    sealed class Driver
    {
        public delegate* unmanaged<int*, int, int> DeviceGet;                  // cuDeviceGet(CUdevice*, int ordinal)
        public delegate* unmanaged<IntPtr*, int, int> DeviceGetMemPool;        // cuDeviceGetMemPool(CUmemoryPool*, CUdevice)
        public delegate* unmanaged<IntPtr, int, ulong*, int> PoolGetAttribute; // cuMemPoolGetAttribute(pool, attr, void*)
        public delegate* unmanaged<IntPtr, int, ulong*, int> PoolSetAttribute; // cuMemPoolSetAttribute(pool, attr, void*)
    }

    static readonly Lazy<Driver?> driver = new(Load);

    static Driver? Load()
    {
        if (!NativeLibrary.TryLoad("libcuda.so.1", out var library)) return null;
        IntPtr Export(string name) => NativeLibrary.TryGetExport(library, name, out var address) ? address : IntPtr.Zero;
        var init = Export("cuInit");
        var d = new Driver
        {
            DeviceGet = (delegate* unmanaged<int*, int, int>)Export("cuDeviceGet"),
            DeviceGetMemPool = (delegate* unmanaged<IntPtr*, int, int>)Export("cuDeviceGetMemPool"),
            PoolGetAttribute = (delegate* unmanaged<IntPtr, int, ulong*, int>)Export("cuMemPoolGetAttribute"),
            PoolSetAttribute = (delegate* unmanaged<IntPtr, int, ulong*, int>)Export("cuMemPoolSetAttribute"),
        };
        if (init == IntPtr.Zero || d.DeviceGet == null || d.DeviceGetMemPool == null || d.PoolGetAttribute == null || d.PoolSetAttribute == null)
            return null;
        // cuInit may be called again after libtorch's own; without a usable GPU it fails and the figures stay null
        return ((delegate* unmanaged<uint, int>)init)(0) == Success ? d : null;
    }

    static IntPtr Pool(Driver d, int device)
    {
        int handle;
        IntPtr pool;
        if (d.DeviceGet(&handle, device) != Success) return IntPtr.Zero;
        return d.DeviceGetMemPool(&pool, handle) == Success ? pool : IntPtr.Zero;
    }

    /// <summary>Sets the peak of <paramref name="device"/>'s pool back to what is in use now; false without the driver.</summary>
    public static bool ResetPeak(int device)
    {
        if (driver.Value is not { } d) return false;
        var pool = Pool(d, device);
        if (pool == IntPtr.Zero) return false;
        ulong zero = 0;   // the driver allows only 0 here, which means "from now"
        return d.PoolSetAttribute(pool, UsedMemoryHigh, &zero) == Success;
    }

    /// <summary>
    /// Peak bytes handed out from <paramref name="device"/>'s pool since the last <see cref="ResetPeak"/> (or since the
    /// pool was made); null without the driver or when nothing came from the pool.
    /// </summary>
    public static long? PeakBytes(int device)
    {
        if (driver.Value is not { } d) return null;
        var pool = Pool(d, device);
        if (pool == IntPtr.Zero) return null;
        ulong peak;
        return d.PoolGetAttribute(pool, UsedMemoryHigh, &peak) == Success && peak > 0 ? (long)peak : null;
    }
}
