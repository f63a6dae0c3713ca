using System.Runtime.InteropServices;
using VhostUserBackend.Config;
using VhostUserBackend.Devices.Blk;

namespace VhostUserBackend.Tests.Config;

/// <summary>The config space on its own: layout, reads past it, writable ranges, change events.</summary>
public sealed class VirtioConfigSpaceTests
{
    [Theory]
    [InlineData(0)]
    [InlineData(-1)]
    [InlineData(257)]
    public void Size_IsOneTo256(int size) => Assert.Throws<ArgumentOutOfRangeException>(() => new VirtioConfigSpace(size));

    [Fact]
    public void Create_HoldsTheStruct_ReadsPastTheLayoutAsZero()
    {
        VirtioConfigSpace space = VirtioConfigSpace.Create(new VirtioBlkConfig { Capacity = 0x1122334455667788, BlockSize = 4096 });
        Assert.Equal(VirtioBlkConfig.Size, space.Size);
        Assert.Equal(0x1122334455667788UL, space.Get<VirtioBlkConfig>().Capacity);

        byte[] all = new byte[256];
        all.AsSpan().Fill(0xEE);
        space.Read(0, all);
        Assert.Equal(0x1122334455667788UL, VirtioBlkConfig.Read(all).Capacity);
        Assert.Equal(4096u, VirtioBlkConfig.Read(all).BlockSize);
        Assert.All(all[VirtioBlkConfig.Size..], b => Assert.Equal(0, b));

        byte[] beyond = [1, 2, 3, 4];
        space.Read(4000, beyond);
        Assert.Equal(new byte[4], beyond);
        space.Read(uint.MaxValue, beyond);
        Assert.Equal(new byte[4], beyond);
    }

    [Fact]
    public void DriverWrites_OnlyWritableBytesAreStored_HandlerSeesThem_RefusalRestores()
    {
        var space = new VirtioConfigSpace(16);
        space.Update(0, [1, 2, 3, 4, 5, 6, 7, 8]);
        var seen = new List<byte>();
        space.AllowWrites(4, 2, config =>
        {
            seen.Add(config[4]);
            if (config[4] == 0xFF)
            {
                throw new ArgumentException("0xFF is not a valid value");
            }

            // A write handler may change other bytes (virtio-input recomputes its payload): no change event.
            config[10] = (byte)(config[4] + 1);
        });
        int changes = 0;
        space.Changed += () => changes++;

        space.WriteFromDriver(4, [0x40]);
        Assert.Equal([0x40], seen);
        Assert.Equal(0x40, Byte(space, 4));
        Assert.Equal(0x41, Byte(space, 10));

        // A whole-space write (QEMU's vhost-user-input writes all 136 bytes): read-only bytes are ignored.
        byte[] whole = new byte[16];
        whole.AsSpan().Fill(0x99);
        space.WriteFromDriver(0, whole);
        Assert.Equal(1, Byte(space, 0));
        Assert.Equal(0x99, Byte(space, 4));
        Assert.Equal(0x99, Byte(space, 5));
        Assert.Equal(0x9A, Byte(space, 10));

        // Refused by the handler: everything is as it was, the handler's own change included.
        ArgumentException refused = Assert.Throws<ArgumentException>(() => space.WriteFromDriver(3, [0x77, 0xFF]));
        Assert.Contains("0xFF", refused.Message, StringComparison.Ordinal);
        Assert.Equal(4, Byte(space, 3));
        Assert.Equal(0x99, Byte(space, 4));
        Assert.Equal(0x9A, Byte(space, 10));

        // No writable byte touched, past the layout, empty: clear errors, nothing stored.
        Assert.Contains("touches no writable field (writable: [4, +2))", Assert.Throws<ArgumentException>(() => space.WriteFromDriver(0, [9, 9])).Message, StringComparison.Ordinal);
        Assert.Contains("outside the device's 16-byte config space", Assert.Throws<ArgumentException>(() => space.WriteFromDriver(15, [9, 9])).Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => space.WriteFromDriver(uint.MaxValue, [9]));
        Assert.Throws<ArgumentException>(() => space.WriteFromDriver(4, []));
        Assert.Equal(1, Byte(space, 0));
        Assert.Equal(0, changes);
    }

    [Fact]
    public void DeviceChanges_RaiseChanged_OnlyWhenBytesDiffer()
    {
        VirtioConfigSpace space = VirtioConfigSpace.Create(new VirtioBlkConfig { Capacity = 8 });
        int changes = 0;
        space.Changed += () => changes++;
        space.Update((ref VirtioBlkConfig c) => c.Capacity = 8);
        Assert.Equal(0, changes);
        space.Update((ref VirtioBlkConfig c) => c.Capacity = 16);
        Assert.Equal(1, changes);
        space.Set(new VirtioBlkConfig { Capacity = 16 });
        Assert.Equal(1, changes);
        space.Update(VirtioBlkConfig.WritebackOffset, [1]);
        Assert.Equal(2, changes);
        Assert.Equal(16UL, space.Get<VirtioBlkConfig>().Capacity);

        Assert.Throws<ArgumentOutOfRangeException>(() => space.Update(VirtioBlkConfig.Size - 1, [1, 2]));
        Assert.Throws<ArgumentOutOfRangeException>(() => space.Update(-1, [1]));
        Assert.Throws<ArgumentOutOfRangeException>(() => new VirtioConfigSpace(4).Set(new VirtioBlkConfig()));
        Assert.Throws<ArgumentOutOfRangeException>(() => space.AllowWrites(VirtioBlkConfig.Size, 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => space.AllowWrites(0, 0));
    }

    private static byte Byte(VirtioConfigSpace space, uint offset)
    {
        Span<byte> b = stackalloc byte[1];
        space.Read(offset, b);
        return b[0];
    }
}
