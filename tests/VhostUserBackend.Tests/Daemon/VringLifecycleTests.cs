using Vhost;
using Vhost.User;
using VhostUserBackend.Memory;
using VhostUserBackend.Testing;
using VhostUserBackend.Virtio;

namespace VhostUserBackend.Tests.Daemon;

/// <summary>
/// The ring's own lifecycle (<c>Vring.Lifecycle.cs</c>): what the protocol handler calls on the
/// control thread, driven directly with a guest RAM and a split driver.
/// </summary>
public sealed class VringLifecycleTests : IDisposable
{
    private const ulong Gpa = 0x100000;
    private readonly VhostUserBackendMetrics _metrics = new();
    private readonly GuestRam _ram = GuestRam.Create(64 * 1024, Gpa);
    private readonly GuestMemory _memory;
    private readonly SplitQueueDriver _driver;
    private readonly Vring _ring;

    public VringLifecycleTests()
    {
        _memory = _ram.CreateGuestMemory();
        _driver = new SplitQueueDriver(_ram, 8);
        _ring = new Vring(0, 8, _metrics);
        _ring.SetSize(8);
        _ring.SetAddresses(User(_driver.DescriptorTableAddress), User(_driver.AvailRingAddress), User(_driver.UsedRingAddress), null);
    }

    public void Dispose()
    {
        _ring.Stop();
        _ring.Queue.Dispose();
        _memory.Dispose();
        _ram.Dispose();
        _metrics.Dispose();
    }

    [Fact]
    public void Start_TranslatesTheFrontEndsAddresses_AppliesTheRingFeatures_AndStopReturnsTheBase()
    {
        _ring.ApplyFeatures(packed: false, eventIdx: true, indirect: true);
        _ring.IsEnabled = true;
        Assert.Equal(0, _ring.Start(_memory, null));
        Assert.True(_ring.IsReady);
        Assert.Equal(_driver.DescriptorTableAddress, _ring.Queue.DescriptorTableAddress);
        Assert.Equal(_driver.AvailRingAddress, _ring.Queue.DriverAreaAddress);
        Assert.Equal(_driver.UsedRingAddress, _ring.Queue.DeviceAreaAddress);
        Assert.True(_ring.Queue.EventIdx);
        Assert.True(_ring.Queue.IndirectDescriptors);

        _driver.AddBuffers([new(Gpa + 0x8000, 64, false)]);
        _driver.Publish();
        Assert.True(_ring.TryPopDescriptorChain(out DescriptorChain chain));
        _ring.AddUsed(chain.Head, 0);
        Assert.Equal(1u, _ring.Stop());
        Assert.False(_ring.IsStarted);
        Assert.True(_ring.IsEnabled);
    }

    [Fact]
    public void A_layout_change_is_refused_while_started_and_a_reset_returns_to_a_plain_split_ring()
    {
        _ring.ApplyFeatures(packed: false, eventIdx: true, indirect: true);
        _ring.Start(_memory, null);
        var e = Assert.Throws<InvalidOperationException>(() => _ring.ApplyFeatures(packed: true, eventIdx: true, indirect: true));
        Assert.Contains("is started", e.Message, StringComparison.Ordinal);

        _ring.Stop();
        _ring.ApplyFeatures(packed: true, eventIdx: true, indirect: true);
        Assert.IsType<PackedQueue>(_ring.Queue);

        // RESET_DEVICE forgets the negotiated features: a ring started again before a new
        // SET_FEATURES is a split ring without EVENT_IDX or indirect descriptors.
        _ring.Reset(keepNotifiers: true);
        Assert.IsType<SplitQueue>(_ring.Queue);
        Assert.False(_ring.HasAddresses);
        Assert.Throws<InvalidOperationException>(() => _ring.Start(_memory, null));
        _ring.SetAddresses(User(_driver.DescriptorTableAddress), User(_driver.AvailRingAddress), User(_driver.UsedRingAddress), null);
        _ring.Start(_memory, null);
        Assert.False(_ring.Queue.EventIdx);
        Assert.False(_ring.Queue.IndirectDescriptors);
    }

    [Fact]
    public void Rebind_moves_a_running_ring_loses_it_with_its_memory_and_regains_it_at_the_same_position()
    {
        _ring.IsEnabled = true;
        _ring.Start(_memory, null);
        _driver.AddBuffers([new(Gpa + 0x8000, 64, false)]);
        _driver.Publish();
        Assert.True(_ring.TryPopDescriptorChain(out DescriptorChain chain));
        _ring.AddUsed(chain.Head, 0);

        using GuestMemory same = _ram.CreateGuestMemory();
        Assert.Equal(Vring.RebindResult.Moved, _ring.Rebind(same, out _));
        Assert.Same(same, _ring.Memory);

        using GuestMemory empty = GuestMemory.CreateEmpty();
        Assert.Equal(Vring.RebindResult.Lost, _ring.Rebind(empty, out VhostException? lost));
        Assert.Contains("not in guest memory", lost!.Message, StringComparison.Ordinal);
        Assert.True(_ring.IsStarted);
        Assert.False(_ring.IsReady);
        Assert.Equal(Vring.RebindResult.StillUnmapped, _ring.Rebind(empty, out _));

        Assert.Equal(Vring.RebindResult.Regained, _ring.Rebind(same, out _));
        Assert.True(_ring.IsReady);
        Assert.Equal(1u, _ring.Queue.GetVringBase());
    }

    [Fact]
    public void A_running_rings_log_address_must_be_guest_memory()
    {
        _ring.Start(_memory, null);
        var e = Assert.Throws<VhostUserProtocolException>(() => _ring.SetRingLogAddress(0x10, _memory));
        Assert.Contains("is not guest memory", e.Message, StringComparison.Ordinal);
        _ring.SetRingLogAddress(_driver.UsedRingAddress, _memory);
        Assert.Equal(_driver.UsedRingAddress, _ring.Queue.RingLogAddress);
        _ring.SetRingLogAddress(null, _memory);
        Assert.Null(_ring.Queue.RingLogAddress);
    }

    private ulong User(ulong gpa) => _memory.Regions[0].UserAddress + (gpa - Gpa);
}
