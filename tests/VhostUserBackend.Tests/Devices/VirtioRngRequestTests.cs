using VhostUserBackend.Devices.Rng;
using VhostUserBackend.Tests.Virtio;
using VhostUserBackend.Virtio;

namespace VhostUserBackend.Tests.Devices;

/// <summary><see cref="VirtioRngRequest.Fill"/>: writable buffers only, in order, the budget, a malformed chain.</summary>
public sealed class VirtioRngRequestTests
{
    private const ulong Data = QueueRig.RamBase + 0x200000;

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Fills_the_writable_buffers_in_order_up_to_the_budget(bool packed)
    {
        using QueueRig rig = packed ? QueueRig.CreatePacked(16) : QueueRig.CreateSplit(16);
        rig.Ram.Write(Data, [9, 9, 9, 9]);
        rig.Add([new(Data, 4, false), new(Data + 0x1000, 5, true), new(Data + 0x2000, 7, true)], false);
        Assert.True(rig.Device.TryPopDescriptorChain(out DescriptorChain chain));
        byte next = 1;

        uint written = VirtioRngRequest.Fill(chain, maxBytes: 8, source: span =>
        {
            for (int i = 0; i < span.Length; i++)
            {
                span[i] = next++;
            }
        });

        Assert.Equal(8u, written);
        Assert.Equal(new byte[] { 9, 9, 9, 9 }, rig.Ram.GetSpan(Data, 4).ToArray());
        Assert.Equal(new byte[] { 1, 2, 3, 4, 5 }, rig.Ram.GetSpan(Data + 0x1000, 5).ToArray());
        Assert.Equal(new byte[] { 6, 7, 8, 0 }, rig.Ram.GetSpan(Data + 0x2000, 4).ToArray());
    }

    [Fact]
    public void The_system_RNG_fills_everything_by_default()
    {
        using QueueRig rig = QueueRig.CreateSplit(16);
        rig.Add([new(Data, 4096, true)], false);
        Assert.True(rig.Device.TryPopDescriptorChain(out DescriptorChain chain));

        Assert.Equal(4096u, VirtioRngRequest.Fill(chain));
        Assert.True(rig.Ram.GetSpan(Data, 4096).ToArray().Distinct().Count() > 200, "4 KiB from the system RNG should use most byte values");
    }

    [Fact]
    public void A_chain_with_a_buffer_outside_guest_memory_throws_a_virtqueue_exception()
    {
        using QueueRig rig = QueueRig.CreateSplit(16);
        rig.Add([new(1UL << 40, 16, true)], false);
        Assert.True(rig.Device.TryPopDescriptorChain(out DescriptorChain chain));
        Assert.Throws<VirtqueueException>(() => VirtioRngRequest.Fill(chain));
    }
}
