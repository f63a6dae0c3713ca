using System.Runtime.InteropServices;

namespace VhostUserBackend.Memory;

/// <summary>
/// The SIGBUS guard of guest-memory mappings (native/faultguard/vhost_fault_guard.c, shipped
/// prebuilt as <c>runtimes/linux-x64/native/libvhostfaultguard.so</c>): a front-end that shrinks
/// a guest-RAM file the daemon could not seal makes the daemon's next access to a page past the
/// new end of the file raise SIGBUS, which the .NET runtime turns into a fatal
/// <see cref="AccessViolationException"/>. The guard's signal handler, installed after the
/// runtime's and chaining to it for every other fault, replaces the whole registered mapping with
/// anonymous memory and marks it lost; the access is retried and reads zeros, and the daemon
/// (<see cref="GuestMemoryRegion.IsLost"/>, checked by the workers after each device call) fails
/// the connection's rings and drops the connection.
/// </summary>
/// <remarks>
/// Without the library (another architecture than x64, a libc other than glibc) the guard is
/// <see cref="UnavailableReason">unavailable</see>: mappings are not registered and a shrunk
/// unsealable file kills the process as before; the daemon logs that once at start.
/// </remarks>
internal static unsafe partial class GuestMemoryFaultGuard
{
    private const string Library = "libvhostfaultguard";
    private const int AbiVersion = 1;

    private static readonly Lazy<string?> Installation = new(Install, LazyThreadSafetyMode.ExecutionAndPublication);
    private static ulong* s_faultCounter;

    /// <summary>Why the guard is not installed, or null when it is (installs it on first use).</summary>
    internal static string? UnavailableReason => Installation.Value;

    /// <summary>How many guest-memory faults the handler took over in this process so far (0 without the guard).</summary>
    /// <remarks>One volatile read of native memory: cheap enough to check after every device call.</remarks>
    internal static ulong FaultCount
    {
        get
        {
            ulong* counter = s_faultCounter;
            return counter is null ? 0 : Volatile.Read(ref *counter);
        }
    }

    /// <summary>Registers a guest-memory mapping (installing the handler on first use).</summary>
    /// <param name="start">The mapping's first byte.</param>
    /// <param name="length">Its length.</param>
    /// <returns>The registration; <see cref="Registration.IsGuarded"/> is false when the guard is unavailable or its table is full.</returns>
    internal static Registration Register(byte* start, nuint length)
    {
        if (Installation.Value is not null)
        {
            return default;
        }

        int slot = vfg_register((nuint)start, length);
        return slot < 0 ? default : new Registration(slot, vfg_lost_flag(slot));
    }

    private static string? Install()
    {
        if (!OperatingSystem.IsLinux() || RuntimeInformation.ProcessArchitecture != Architecture.X64)
        {
            return $"no prebuilt {Library}.so for {RuntimeInformation.RuntimeIdentifier} (only linux-x64 ships one)";
        }

        try
        {
            int version = vfg_version();
            if (version != AbiVersion)
            {
                return $"{Library}.so implements version {version}, this assembly needs {AbiVersion}";
            }

            int rc = vfg_install();
            if (rc != 0)
            {
                return $"sigaction(SIGBUS) failed: errno {-rc}";
            }

            s_faultCounter = vfg_fault_counter();
            return null;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException or BadImageFormatException)
        {
            return $"{Library}.so cannot be loaded: {e.Message}";
        }
    }

    [LibraryImport(Library)]
    private static partial int vfg_version();

    [LibraryImport(Library)]
    private static partial int vfg_install();

    [LibraryImport(Library)]
    [UnmanagedCallConv(CallConvs = [typeof(System.Runtime.CompilerServices.CallConvSuppressGCTransition)])]
    private static partial int vfg_register(nuint start, nuint length);

    [LibraryImport(Library)]
    [UnmanagedCallConv(CallConvs = [typeof(System.Runtime.CompilerServices.CallConvSuppressGCTransition)])]
    private static partial void vfg_unregister(int slot);

    [LibraryImport(Library)]
    private static partial uint* vfg_lost_flag(int slot);

    [LibraryImport(Library)]
    private static partial ulong* vfg_fault_counter();

    /// <summary>One registered mapping: unregister it before the mapping goes.</summary>
    internal readonly struct Registration
    {
        private readonly int _slot;
        private readonly uint* _lost;

        internal Registration(int slot, uint* lost)
        {
            _slot = slot + 1;
            _lost = lost;
        }

        /// <summary>Whether the mapping is registered with the handler.</summary>
        internal bool IsGuarded => _slot != 0;

        /// <summary>Whether the handler replaced the mapping after a fault (the file was shrunk under it).</summary>
        internal bool IsLost => _lost is not null && Volatile.Read(ref *_lost) != 0;

        /// <summary>Unregisters (call once, before munmap).</summary>
        internal void Unregister()
        {
            if (_slot != 0)
            {
                vfg_unregister(_slot - 1);
            }
        }
    }
}
