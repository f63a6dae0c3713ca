using System.Runtime.InteropServices;
using System.Text;
using VhostUserBackend.Devices.Input;

namespace VhostUserBackend.Tests.Devices;

/// <summary>The ready-made virtio-input config space answers select/subsel as the spec (5.8.4) and the Linux driver expect.</summary>
public sealed class VirtioInputConfigSpaceTests
{
    private const ushort KeyA = 30;
    private const ushort KeyEsc = 1;
    private const ushort LedCapsLock = 1;

    [Fact]
    public void Answers_EachSelection_AndSizeZeroForWhatIsNotDeclared()
    {
        var input = new VirtioInputConfigSpace("dotnet keyboard", "kbd-1", new VirtioInputDevIds { BusType = 0x06, Vendor = 0x1234, Product = 0x5678, Version = 1 })
            .WithEvents(VirtioInputEventType.Key, KeyEsc, KeyA, 767)
            .WithEvents(VirtioInputEventType.Led, LedCapsLock)
            .WithEvents(VirtioInputEventType.Absolute, 0)
            .WithAbsInfo(0, new VirtioInputAbsInfo { Min = 0, Max = 32767, Resolution = 10 })
            .WithProperties(1);

        // Before any select: size 0.
        Assert.Equal(0, Query(input, 0, 0).PayloadSize);

        VirtioInputConfig name = Query(input, VirtioInputConfigSelect.IdName, 0);
        Assert.Equal("dotnet keyboard", Encoding.UTF8.GetString(name.Payload[..name.PayloadSize]));
        VirtioInputConfig serial = Query(input, VirtioInputConfigSelect.IdSerial, 0);
        Assert.Equal("kbd-1", Encoding.UTF8.GetString(serial.Payload[..serial.PayloadSize]));
        VirtioInputConfig ids = Query(input, VirtioInputConfigSelect.IdDevIds, 0);
        Assert.Equal(VirtioInputDevIds.Size, ids.PayloadSize);
        Assert.Equal(0x5678, MemoryMarshal.Read<VirtioInputDevIds>(ids.Payload).Product);

        VirtioInputConfig keys = Query(input, VirtioInputConfigSelect.EventBits, (byte)VirtioInputEventType.Key);
        Assert.Equal(96, keys.PayloadSize); // code 767 is in byte 95
        Assert.Equal(1 << 1, keys.Payload[0]);
        Assert.Equal(1 << 6, keys.Payload[3]); // KEY_A = 30
        Assert.Equal(0x80, keys.Payload[95]);
        VirtioInputConfig leds = Query(input, VirtioInputConfigSelect.EventBits, (byte)VirtioInputEventType.Led);
        Assert.Equal(1, leds.PayloadSize);
        Assert.Equal(1 << 1, leds.Payload[0]);
        Assert.Equal(0, Query(input, VirtioInputConfigSelect.EventBits, (byte)VirtioInputEventType.Relative).PayloadSize);

        VirtioInputConfig abs = Query(input, VirtioInputConfigSelect.AbsInfo, 0);
        Assert.Equal(VirtioInputAbsInfo.Size, abs.PayloadSize);
        Assert.Equal(32767u, MemoryMarshal.Read<VirtioInputAbsInfo>(abs.Payload).Max);
        Assert.Equal(0, Query(input, VirtioInputConfigSelect.AbsInfo, 1).PayloadSize);

        VirtioInputConfig props = Query(input, VirtioInputConfigSelect.PropertyBits, 0);
        Assert.Equal(1, props.PayloadSize);
        Assert.Equal(1 << 1, props.Payload[0]);

        Assert.Equal(0, Query(input, (VirtioInputConfigSelect)0x7F, 0).PayloadSize);
        Assert.Equal(0, Query(input, VirtioInputConfigSelect.IdName, 1).PayloadSize);

        // Without device ids: size 0, so the driver leaves them unset.
        Assert.Equal(0, Query(new VirtioInputConfigSpace("x"), VirtioInputConfigSelect.IdDevIds, 0).PayloadSize);
    }

    [Fact]
    public void QemuStyleWholeConfigWrite_WithAStalePayload_StillAnswersTheNewSelection()
    {
        var input = new VirtioInputConfigSpace("kbd").WithEvents(VirtioInputEventType.Key, KeyA);

        // QEMU's vhost-user-input writes all 136 bytes it last read, with the new select/subsel.
        byte[] stale = new byte[VirtioInputConfig.Size];
        input.Space.Read(0, stale);
        stale[0] = (byte)VirtioInputConfigSelect.IdName;
        input.Space.WriteFromDriver(0, stale);
        stale[1] = 0;
        stale[0] = (byte)VirtioInputConfigSelect.EventBits;
        stale[1] = (byte)VirtioInputEventType.Key;
        input.Space.WriteFromDriver(0, stale);
        VirtioInputConfig keys = Read(input);
        Assert.Equal(4, keys.PayloadSize);
        Assert.Equal(1 << 6, keys.Payload[3]);
    }

    [Fact]
    public void Declarations_AreChecked()
    {
        Assert.Throws<ArgumentException>(() => new VirtioInputConfigSpace(new string('n', 129)));
        Assert.Throws<ArgumentOutOfRangeException>(() => new VirtioInputConfigSpace("x").WithEvents(VirtioInputEventType.Key, 1024));
        Assert.Throws<ArgumentOutOfRangeException>(() => new VirtioInputConfigSpace("x").WithProperties(1024));

        // Only select and subsel are writable.
        Assert.Throws<ArgumentException>(() => new VirtioInputConfigSpace("x").Space.WriteFromDriver(2, [1]));
    }

    private static VirtioInputConfig Query(VirtioInputConfigSpace input, VirtioInputConfigSelect select, byte subsel)
    {
        input.Space.WriteFromDriver(VirtioInputConfig.SelectOffset, [(byte)select]);
        input.Space.WriteFromDriver(VirtioInputConfig.SubselOffset, [subsel]);
        return Read(input);
    }

    private static VirtioInputConfig Read(VirtioInputConfigSpace input)
    {
        byte[] bytes = new byte[VirtioInputConfig.Size];
        input.Space.Read(0, bytes);
        return MemoryMarshal.Read<VirtioInputConfig>(bytes);
    }
}
