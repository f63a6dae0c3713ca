using System.Runtime.InteropServices;
using Vhost.Virtio;
using VhostUserBackend.Devices.Blk;
using VhostUserBackend.Devices.Input;
using VhostUserBackend.Devices.Net;

namespace VhostUserBackend.Tests.Devices;

/// <summary>The config-space and header helpers of the device building blocks.</summary>
public sealed class DeviceHelperTests
{
    [Fact]
    public void Blk_config_reads_short_and_long_spaces()
    {
        var bytes = new byte[200];
        BitConverter.TryWriteBytes(bytes.AsSpan(0), 12345UL);
        bytes[VirtioBlkConfig.WritebackOffset] = 1;
        BitConverter.TryWriteBytes(bytes.AsSpan(34), (ushort)4);
        BitConverter.TryWriteBytes(bytes.AsSpan(92), 0xffu);

        VirtioBlkConfig full = VirtioBlkConfig.Read(bytes);
        Assert.Equal((12345UL, (byte)1, (ushort)4, (byte)0xff), (full.Capacity, full.Writeback, full.NumQueues, full.ZonedModel));

        VirtioBlkConfig shortRead = VirtioBlkConfig.Read(bytes.AsSpan(0, 33));
        Assert.Equal((12345UL, (byte)1, (ushort)0), (shortRead.Capacity, shortRead.Writeback, shortRead.NumQueues));
        Assert.Equal(0UL, VirtioBlkConfig.Read([]).Capacity);
    }

    [Fact]
    public void Net_config_bytes_hold_mac_status_pairs_and_mtu_at_the_spec_offsets()
    {
        var config = new VirtioNetConfig { Status = VirtioNetStatus.LinkUp, MaxVirtqueuePairs = 4, Mtu = 1500, Speed = VirtioNetConfig.SpeedUnknown, Duplex = VirtioNetConfig.DuplexUnknown };
        new byte[] { 2, 0, 0, 0, 1, 7 }.CopyTo(config.Mac);
        byte[] bytes = MemoryMarshal.AsBytes(new ReadOnlySpan<VirtioNetConfig>(in config)).ToArray();
        Assert.Equal(new byte[] { 2, 0, 0, 0, 1, 7, 1, 0, 4, 0, 0xdc, 0x05, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0 }, bytes);
        Assert.Equal(VirtioNetConfig.MacLength, config.Mac.Length);
    }

    [Theory]
    [InlineData(0UL, VirtioNetHeader.LegacySize)]
    [InlineData((ulong)VirtioFeatures.Version1, VirtioNetHeader.Size)]
    [InlineData((ulong)VirtioNetFeatures.MergeableRxBuffers, VirtioNetHeader.Size)]
    [InlineData((ulong)VirtioNetFeatures.Csum | (ulong)VirtioFeatures.RingEventIndex, VirtioNetHeader.LegacySize)]
    public void Net_header_size_follows_the_negotiated_features(ulong features, int size)
        => Assert.Equal(size, VirtioNetHeader.GetSize(features));

    [Fact]
    public void Input_config_answers_strings_bitmaps_absinfo_and_ids()
    {
        var config = new VirtioInputConfig { Select = VirtioInputConfigSelect.IdName };
        config.SetString("keyboard"u8);
        Assert.Equal(8, config.PayloadSize);
        Assert.Equal("keyboard"u8.ToArray(), config.Payload[..8].ToArray());
        Assert.Equal(VirtioInputConfigSelect.IdName, config.Select);

        config.SetBitmap([(ushort)VirtioInputEventType.Key, (ushort)VirtioInputEventType.Led, (ushort)VirtioInputEventType.Repeat]);
        Assert.Equal(3, config.PayloadSize);
        Assert.Equal(new byte[] { 0x02, 0x00, 0x12, 0 }, config.Payload[..4].ToArray()); // EV_KEY 1; EV_LED 0x11 and EV_REP 0x14 in byte 2

        config.SetBitmap([1023]);
        Assert.Equal(128, config.PayloadSize);
        Assert.Equal(0x80, config.Payload[127]);

        config.SetBitmap([]);
        Assert.Equal(0, config.PayloadSize);

        config.SetAbsInfo(new VirtioInputAbsInfo { Min = 0, Max = 32767, Resolution = 1 });
        Assert.Equal(VirtioInputAbsInfo.Size, config.PayloadSize);
        Assert.Equal(32767u, BitConverter.ToUInt32(config.Payload[4..8]));

        config.SetDevIds(new VirtioInputDevIds { BusType = 6, Vendor = 0x627, Product = 1, Version = 1 });
        Assert.Equal(VirtioInputDevIds.Size, config.PayloadSize);
        Assert.Equal(new byte[] { 6, 0, 0x27, 6, 1, 0, 1, 0, 0 }, config.Payload[..9].ToArray());

        config.Clear();
        Assert.Equal(0, config.PayloadSize);
        Assert.True(config.Payload.IndexOfAnyExcept((byte)0) < 0);
    }

    [Fact]
    public void Input_config_refuses_what_does_not_fit()
    {
        var config = new VirtioInputConfig();
        config.SetString("x"u8);
        Assert.Throws<ArgumentException>(() => config.SetString(new byte[129]));
        Assert.Throws<ArgumentOutOfRangeException>(() => config.SetBitmap([1, 1024]));
        Assert.Equal(0, config.PayloadSize);
        config.SetString(new byte[128]);
        Assert.Equal(128, config.PayloadSize);
    }

    [Fact]
    public void Input_event_is_written_as_the_driver_reads_it()
    {
        var e = new VirtioInputEvent(VirtioInputEventType.Key, 30, 1);
        byte[] bytes = MemoryMarshal.AsBytes(new ReadOnlySpan<VirtioInputEvent>(in e)).ToArray();
        Assert.Equal(new byte[] { 1, 0, 30, 0, 1, 0, 0, 0 }, bytes);
    }
}
