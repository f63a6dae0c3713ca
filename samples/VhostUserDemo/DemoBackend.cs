using Microsoft.Win32.SafeHandles;
using Vhost;
using Vhost.User;
using Vhost.User.Messages;
using Vhost.Virtio;

namespace VhostUserDemo;

/// <summary>
/// A toy vhost-user back-end: it negotiates, keeps the kick and call eventfds it receives, and
/// answers each kick by signalling the call eventfd. It prints what it was told.
/// </summary>
internal sealed class DemoBackend : IVhostUserBackendRequestHandler, IDisposable
{
    private const ulong OfferedFeatures = (ulong)VhostUserVirtioFeatures.ProtocolFeatures | (ulong)VirtioFeatures.Version1;
    private readonly SafeFileHandle?[] _kick = new SafeFileHandle?[2];
    private readonly SafeFileHandle?[] _call = new SafeFileHandle?[2];
    private readonly List<SafeFileHandle> _memory = new();

    public void GetConfig(uint offset, VhostUserConfigFlags flags, Span<byte> data) => data.Clear();

    public ulong GetFeatures() => OfferedFeatures;

    public void SetFeatures(ulong features) => Log($"SET_FEATURES 0x{features:x}");

    public void SetOwner() => Log("SET_OWNER");

    public VhostUserProtocolFeatures GetProtocolFeatures()
        => VhostUserProtocolFeatures.MQ | VhostUserProtocolFeatures.Config;

    public void SetProtocolFeatures(VhostUserProtocolFeatures features) => Log($"SET_PROTOCOL_FEATURES {features}");

    public ulong GetQueueNum() => 2;

    public void SetMemoryTable(ReadOnlySpan<VhostUserMemoryRegion> regions, ReceivedFds fds)
    {
        for (int i = 0; i < regions.Length; i++)
        {
            _memory.Add(fds.Take(i));
            Log($"SET_MEM_TABLE region {i}: guest 0x{regions[i].GuestPhysicalAddress:x} size 0x{regions[i].MemorySize:x}, fd received");
        }
    }

    public void SetVringNum(int index, uint num) => Log($"SET_VRING_NUM ring {index} size {num}");

    public void SetVringAddress(in VhostUserVringAddress address) => Log($"SET_VRING_ADDR ring {address.Index}");

    public void SetVringBase(int index, uint baseValue) => Log($"SET_VRING_BASE ring {index} base {baseValue}");

    public uint GetVringBase(int index) => 0;

    public void SetVringKick(int index, ReceivedFds fds)
    {
        Replace(_kick, index, fds.Count > 0 ? fds.Take(0) : null);
        Log($"SET_VRING_KICK ring {index}: eventfd received");
    }

    public void SetVringCall(int index, ReceivedFds fds)
    {
        Replace(_call, index, fds.Count > 0 ? fds.Take(0) : null);
        Log($"SET_VRING_CALL ring {index}: eventfd received");
    }

    public void SetVringEnable(int index, bool enable) => Log($"SET_VRING_ENABLE ring {index} {(enable ? "on" : "off")}");

    /// <summary>Waits for a kick on <paramref name="ring"/> and answers it with a call.</summary>
    public void ServeOneKick(int ring)
    {
        using EventFd kick = EventFd.FromHandle(Fd(_kick, ring));
        ulong count = kick.Read();
        Log($"ring {ring}: kicked (counter {count}); signalling its call eventfd");
        using EventFd call = EventFd.FromHandle(Fd(_call, ring));
        call.Signal();
    }

    public void Dispose()
    {
        foreach (SafeFileHandle? h in _kick.Concat(_call).Concat(_memory))
        {
            h?.Dispose();
        }
    }

    private static SafeFileHandle Fd(SafeFileHandle?[] set, int ring)
    {
        SafeFileHandle handle = set[ring] ?? throw new InvalidOperationException($"ring {ring} has no eventfd");
        set[ring] = null;
        return handle;
    }

    private static void Replace(SafeFileHandle?[] set, int ring, SafeFileHandle? handle)
    {
        if ((uint)ring >= (uint)set.Length)
        {
            handle?.Dispose();
            throw new ArgumentException($"ring {ring} does not exist");
        }

        set[ring]?.Dispose();
        set[ring] = handle;
    }

    private static void Log(string text) => Console.WriteLine($"  backend  | {text}");
}
