using System.Buffers.Binary;
using Vhost.User.Messages;
using Vhost.Vmm;
using VhostProbe.Devices;
using VhostUserNet;

namespace Vhost.IntegrationTests.UserNet;

/// <summary>
/// DEVICE_STATE with the net sample: a port's counters and learned MACs move from one sample
/// process to another through the project's front-end (SET_DEVICE_STATE_FD save, pipe, load,
/// CHECK_DEVICE_STATE), as QEMU's vhost_save_backend_state / vhost_load_backend_state do.
/// QEMU 10 itself sends these messages only for vhost-user-fs (see docs/protocol-coverage.md).
/// </summary>
public sealed class NetSampleDeviceStateTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(5);

    private static readonly VmmDeviceOptions WithState = new()
    {
        QueueCount = 2,
        QueueSize = 256,
        ProtocolFeatures = VmmDeviceOptions.DefaultProtocolFeatures | VhostUserProtocolFeatures.DeviceState,
    };

    private static readonly VmmDeviceOptions Plain = new() { QueueCount = 2, QueueSize = 256 };

    [Fact]
    public async Task A_ports_counters_and_learned_macs_move_to_another_sample_process()
    {
        using NetSample source = NetSample.Start(2, "--mode", "switch");
        using NetSample destination = NetSample.Start(3, "--mode", "switch");
        var buffer = new byte[2048];
        byte[] state;
        using (VmmDevice s0 = VmmDevice.Connect(source.SocketPaths[0], WithState, Wait))
        using (VmmDevice s1 = VmmDevice.Connect(source.SocketPaths[1], Plain, Wait))
        {
            Assert.Equal(VhostUserProtocolFeatures.DeviceState, s0.AckedProtocolFeatures & VhostUserProtocolFeatures.DeviceState);
            var c0 = new VirtioNetClient(s0);
            var c1 = new VirtioNetClient(s1);

            // Port 0 transmits from two MACs: the switch learns both behind port 0.
            Assert.True(c0.TrySend(NetSampleVmmTests.Frame(dst: 0x11, src: 0x10, tag: 1)));
            Assert.Equal(64, c1.Receive(buffer, Wait));
            Assert.True(c0.TrySend(NetSampleVmmTests.Frame(dst: 0x11, src: 0x20, tag: 2)));
            Assert.Equal(64, c1.Receive(buffer, Wait));

            // As QEMU does: stop the rings (suspended device), then save.
            s0.Stop();
            state = s0.Frontend.SaveDeviceState(1 << 20, Wait);
        }

        (long[] counters, ulong[] macs) = NetPortState.Parse(state, 4096);
        Assert.Equal(2, counters[0]);                    // TX frames
        Assert.Equal(128, counters[1]);                  // TX bytes
        Assert.Equal([0x02_00_00_00_00_10UL, 0x02_00_00_00_00_20UL], macs.Order());

        using (VmmDevice t0 = VmmDevice.Connect(destination.SocketPaths[0], WithState, Wait))
        using (VmmDevice t1 = VmmDevice.Connect(destination.SocketPaths[1], Plain, Wait))
        using (VmmDevice t2 = VmmDevice.Connect(destination.SocketPaths[2], Plain, Wait))
        {
            t0.Stop();
            t0.Frontend.LoadDeviceState(state, Wait);

            // The destination saves what it loaded, byte for byte.
            Assert.Equal(state, t0.Frontend.SaveDeviceState(1 << 20, Wait));

            // Its switch knows the migrated MACs: a frame for one goes to port 0 only (not flooded
            // to port 2), while a frame for an unknown MAC still floods.
            var c1 = new VirtioNetClient(t1);
            var c2 = new VirtioNetClient(t2);
            Assert.True(c1.TrySend(NetSampleVmmTests.Frame(dst: 0x20, src: 0x31, tag: 3)));
            Assert.Equal(-1, c2.Receive(buffer, TimeSpan.FromMilliseconds(500)));
            Assert.True(c1.TrySend(NetSampleVmmTests.Frame(dst: 0x44, src: 0x31, tag: 4)));
            Assert.Equal(64, c2.Receive(buffer, Wait));
            Assert.Equal(4, buffer[14]);

            // A state that is not a net port's is rejected at CHECK_DEVICE_STATE; the port keeps its own.
            byte[] bad = (byte[])state.Clone();
            BinaryPrimitives.WriteUInt16LittleEndian(bad.AsSpan(4), 99);
            Assert.ThrowsAny<Vhost.User.VhostUserException>(() => t0.Frontend.LoadDeviceState(bad, Wait));
            (long[] after, ulong[] kept) = NetPortState.Parse(t0.Frontend.SaveDeviceState(1 << 20, Wait), 4096);
            Assert.Equal(counters[..5], after[..5]);
            Assert.Equal(macs, kept);

            // Both frames above reached port 0 (its rings are stopped, so they were dropped there).
            Assert.Equal(2, after[5]);
        }

        Assert.Equal(0, await destination.StopAsync());
        Assert.Equal(2, destination.Counters(0).Tx);    // the counters arrived (and were logged at exit)
        Assert.DoesNotContain("Unhandled", destination.Output, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(new byte[0])]
    [InlineData(new byte[] { (byte)'V', (byte)'U', (byte)'N', (byte)'P' })]
    public void Short_states_are_rejected(byte[] state)
        => Assert.Throws<InvalidDataException>(() => NetPortState.Parse(state, 4096));

    [Fact]
    public void Malformed_states_are_rejected_with_a_reason()
    {
        byte[] good = new byte[8 + 56 + 4 + 6];
        "VUNP"u8.CopyTo(good);
        good[4] = 1;
        good[64] = 1;
        good[68] = 2;
        good[73] = 5;
        (_, ulong[] macs) = NetPortState.Parse(good, 4096);
        Assert.Equal([0x02_00_00_00_00_05UL], macs);

        Assert.Contains("magic", Reject(good, b => b[0] = (byte)'X'), StringComparison.Ordinal);
        Assert.Contains("version", Reject(good, b => b[4] = 2), StringComparison.Ordinal);
        Assert.Contains("reserved", Reject(good, b => b[6] = 1), StringComparison.Ordinal);
        Assert.Contains("negative", Reject(good, b => b[15] = 0x80), StringComparison.Ordinal);
        Assert.Contains("MACs", Reject(good, b => b[64] = 2), StringComparison.Ordinal);
        Assert.Contains("MACs", Reject(good, b => b[64] = 0xff), StringComparison.Ordinal);
        Assert.Contains("unicast", Reject(good, b => b[68] = 1), StringComparison.Ordinal);
        Assert.Contains("MACs", Reject([.. good, 0], _ => { }), StringComparison.Ordinal);
        Assert.Throws<InvalidDataException>(() => NetPortState.Parse(good, 0));
    }

    private static string Reject(byte[] good, Action<byte[]> spoil)
    {
        byte[] bad = (byte[])good.Clone();
        spoil(bad);
        return Assert.Throws<InvalidDataException>(() => NetPortState.Parse(bad, 4096)).Message;
    }
}
