using System.Buffers.Binary;
using System.Diagnostics;
using System.Net.NetworkInformation;
using Vhost.User.Messages;
using VhostProbe.Devices;
using Vhost.Virtio;
using VhostUserBackend.Devices.Net;
using VhostUserBackend.Testing;
using Vhost.Vmm;
using VhostUserBackend.Virtio;
using VhostUserNet;

namespace Vhost.IntegrationTests.UserNet;

/// <summary>
/// The vhost-user-net sample (a separate process) driven by the project's own VMM layer instead of
/// QEMU: exact reply frames, config space, the switch's learning, reconnect, and usage errors.
/// Fast (no guest).
/// </summary>
public sealed class NetSampleVmmTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(5);

    [Fact]
    public void Responder_answers_arp_and_ping_and_keeps_serving_after_a_reconnect()
    {
        using NetSample sample = NetSample.Start(1, "--mode", "responder", "--mac", "02:00:00:00:00:fe");
        for (int connection = 0; connection < 2; connection++)
        {
            using VmmDevice dev = Connect(sample.SocketPaths[0]);
            var client = new VirtioNetClient(dev);
            var buffer = new byte[2048];

            Assert.True(client.TrySend(NetSampleUnitTests.ArpRequest([192, 0, 2, 1])));
            int n = client.Receive(buffer, Wait);
            Assert.Equal(60, n);
            Assert.Equal(new byte[] { 2, 0, 0, 0, 0, 0xfe }, buffer[22..28]);

            byte[] ping = NetSampleUnitTests.EchoRequest([192, 0, 2, 1], 100);
            Assert.True(client.TrySend(ping));
            n = client.Receive(buffer, Wait);
            Assert.Equal(ping.Length, n);
            Assert.Equal(0, buffer[14 + 20]);                      // echo reply

            Assert.True(client.TrySend(NetSampleUnitTests.EchoRequest([192, 0, 2, 99], 100)));
            Assert.Equal(-1, client.Receive(buffer, TimeSpan.FromMilliseconds(300)));
        }
    }

    [Fact]
    public void Config_space_and_features_describe_a_multiqueue_net_device()
    {
        using NetSample sample = NetSample.Start(1, "--num-queues", "2");
        using VmmDevice dev = VmmDevice.Connect(sample.SocketPaths[0], new VmmDeviceOptions { QueueCount = 4, QueueSize = 256 }, Wait);
        Assert.Equal(4, dev.BackendQueueCount);
        var offered = (VirtioNetFeatures)dev.OfferedFeatures;
        foreach (VirtioNetFeatures f in new[] { VirtioNetFeatures.MultiQueue, VirtioNetFeatures.MergeableRxBuffers, VirtioNetFeatures.Csum, VirtioNetFeatures.GuestCsum, VirtioNetFeatures.HostTso4, VirtioNetFeatures.GuestTso6, VirtioNetFeatures.Mac, VirtioNetFeatures.Status, VirtioNetFeatures.Mtu })
        {
            Assert.True(offered.HasFlag(f), f.ToString());
        }

        Assert.False(offered.HasFlag(VirtioNetFeatures.ControlVirtqueue));
        byte[] config = dev.GetConfig(16);
        Assert.Equal(new byte[] { 2, 0, 0, 0, 1, 1, 1, 0, 2, 0, 0xdc, 0x05, 0, 0, 0, 0 }, config);
        Assert.True((dev.AckedProtocolFeatures & VhostUserProtocolFeatures.MQ) != 0);
    }

    [Fact]
    public void Switch_floods_unknown_destinations_then_forwards_to_the_learned_port_only()
    {
        using NetSample sample = NetSample.Start(3, "--mode", "switch");
        using VmmDevice d0 = Connect(sample.SocketPaths[0]);
        using VmmDevice d1 = Connect(sample.SocketPaths[1]);
        using VmmDevice d2 = Connect(sample.SocketPaths[2]);
        VirtioNetClient[] c = [new(d0), new(d1), new(d2)];
        var buffer = new byte[2048];

        // 0 -> unknown unicast: flooded to 1 and 2.
        Assert.True(c[0].TrySend(Frame(dst: 0x11, src: 0x10, tag: 1)));
        Assert.Equal(64, c[1].Receive(buffer, Wait));
        Assert.Equal(1, buffer[14]);
        Assert.Equal(64, c[2].Receive(buffer, Wait));

        // 1 -> 0's MAC (learned): only 0 gets it.
        Assert.True(c[1].TrySend(Frame(dst: 0x10, src: 0x11, tag: 2)));
        Assert.Equal(64, c[0].Receive(buffer, Wait));
        Assert.Equal(2, buffer[14]);
        Assert.Equal(-1, c[2].Receive(buffer, TimeSpan.FromMilliseconds(300)));

        // 0 -> 1's MAC (learned from the last frame): only 1.
        Assert.True(c[0].TrySend(Frame(dst: 0x11, src: 0x10, tag: 3)));
        Assert.Equal(64, c[1].Receive(buffer, Wait));
        Assert.Equal(3, buffer[14]);
        Assert.Equal(-1, c[2].Receive(buffer, TimeSpan.FromMilliseconds(300)));

        // Broadcast from 2: 0 and 1.
        Assert.True(c[2].TrySend(Frame(dst: 0xff, src: 0x12, tag: 4)));
        Assert.Equal(64, c[0].Receive(buffer, Wait));
        Assert.Equal(64, c[1].Receive(buffer, Wait));
    }

    [Fact]
    public void Cross_mode_wires_port_pairs_without_learning()
    {
        using NetSample sample = NetSample.Start(4, "--mode", "cross");
        VmmDevice[] d = [.. sample.SocketPaths.Select(Connect)];
        try
        {
            VirtioNetClient[] c = [.. d.Select(x => new VirtioNetClient(x))];
            var buffer = new byte[2048];

            // 0 -> 1 and 1 -> 0 whatever the destination (even one learned on the sender's own port); 2 and 3 hear nothing.
            Assert.True(c[0].TrySend(Frame(dst: 0x10, src: 0x10, tag: 1)));
            Assert.Equal(64, c[1].Receive(buffer, Wait));
            Assert.Equal(1, buffer[14]);
            Assert.True(c[1].TrySend(Frame(dst: 0xff, src: 0x11, tag: 2)));
            Assert.Equal(64, c[0].Receive(buffer, Wait));
            Assert.Equal(2, buffer[14]);
            Assert.Equal(-1, c[2].Receive(buffer, TimeSpan.FromMilliseconds(300)));
            Assert.Equal(-1, c[3].Receive(buffer, TimeSpan.FromMilliseconds(300)));

            // 3 -> 2.
            Assert.True(c[3].TrySend(Frame(dst: 0x10, src: 0x13, tag: 3)));
            Assert.Equal(64, c[2].Receive(buffer, Wait));
            Assert.Equal(3, buffer[14]);
        }
        finally
        {
            foreach (VmmDevice x in d)
            {
                x.Dispose();
            }
        }
    }

    [Fact]
    public void Source_fills_rx_buffers_with_frames_of_the_configured_size()
    {
        using NetSample sample = NetSample.Start(1, "--mode", "source", "--frame-size", "200", "--mac", "02:00:00:00:00:33");
        using VmmDevice dev = Connect(sample.SocketPaths[0]);
        var client = new VirtioNetClient(dev);
        var buffer = new byte[2048];
        for (int i = 0; i < 300; i++)
        {
            Assert.Equal(200, client.Receive(buffer, Wait));
        }

        Assert.Equal(new byte[] { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 0x33, 0x08, 0x00 }, buffer[..14]);
        Assert.Equal(0, InternetChecksum.Compute(buffer.AsSpan(14, 20)));       // the IPv4 header, built per frame
        Assert.Equal(17, buffer[14 + 9]);                                      // UDP
        Assert.Equal(200 - 14 - 20, BinaryPrimitives.ReadUInt16BigEndian(buffer.AsSpan(14 + 20 + 4)));
    }

    [Fact]
    public void Responder_takes_tx_chains_of_one_buffer_two_buffers_and_indirect_tables_in_one_burst()
    {
        // The TX path has a fast path for the usual one-buffer chain and a general path for the
        // rest; a burst mixing both (and an indirect chain) must answer every request in order.
        using NetSample sample = NetSample.Start(1, "--mode", "responder", "--mac", "02:00:00:00:00:fe");
        using VmmDevice dev = VmmDevice.Connect(sample.SocketPaths[0], new VmmDeviceOptions { QueueCount = 2, QueueSize = 256, MaxIndirectEntries = 4 }, Wait);
        Assert.True((dev.AckedFeatures & (ulong)VirtioFeatures.RingIndirectDescriptors) != 0);
        var client = new VirtioNetClient(dev);
        VmmQueue tx = dev.Queues[1];
        var buffer = new byte[2048];
        const int Requests = 12;
        for (int i = 0; i < Requests; i++)
        {
            byte[] ping = NetSampleUnitTests.EchoRequest([192, 0, 2, 1], 100 + i);
            ulong header = dev.Ram.Allocate(VirtioNetClient.HeaderSize + (ulong)ping.Length, 64);
            dev.Ram.GetSpan(header, VirtioNetClient.HeaderSize).Clear();
            dev.Ram.Write(header + VirtioNetClient.HeaderSize, ping);
            uint whole = (uint)(VirtioNetClient.HeaderSize + ping.Length);
            switch (i % 3)
            {
                case 0:
                    tx.Submit([new VirtqBuffer(header, whole, false)]);
                    break;
                case 1:
                    tx.Submit([new VirtqBuffer(header, VirtioNetClient.HeaderSize, false), new VirtqBuffer(header + VirtioNetClient.HeaderSize, (uint)ping.Length, false)]);
                    break;
                default:
                    tx.Submit([new VirtqBuffer(header, 20, false), new VirtqBuffer(header + 20, whole - 20, false)], indirect: true);
                    break;
            }
        }

        for (int i = 0; i < Requests; i++)
        {
            int n = client.Receive(buffer, Wait);
            Assert.Equal(14 + 20 + 8 + 100 + i, n);               // the reply has the request's size
            Assert.Equal(0, buffer[14 + 20]);                      // echo reply
        }
    }

    [Fact]
    public void Source_sequence_numbers_run_on_across_bursts()
    {
        // 256 posted RX buffers are filled in bursts of NetPort.Burst; every frame's sequence
        // number (the first UDP payload bytes, big-endian) must follow the previous one: no chain lost or repeated
        // at a burst boundary.
        using NetSample sample = NetSample.Start(1, "--mode", "source", "--frame-size", "64");
        using VmmDevice dev = Connect(sample.SocketPaths[0]);
        var client = new VirtioNetClient(dev);
        var buffer = new byte[2048];
        uint? previous = null;
        for (int i = 0; i < 10 * NetPort.Burst; i++)
        {
            Assert.Equal(64, client.Receive(buffer, Wait));
            uint sequence = BinaryPrimitives.ReadUInt32BigEndian(buffer.AsSpan(SourceFrame.HeadersSize));
            Assert.Equal(0, InternetChecksum.Compute(buffer.AsSpan(14, 20)));
            if (previous is uint p)
            {
                Assert.Equal(p + 1, sequence);
            }

            previous = sequence;
        }
    }

    [Fact]
    public void Switch_forwards_a_stream_longer_than_a_burst_in_order_without_loss()
    {
        using NetSample sample = NetSample.Start(2, "--mode", "switch");
        using VmmDevice d0 = Connect(sample.SocketPaths[0]);
        using VmmDevice d1 = Connect(sample.SocketPaths[1]);
        var c0 = new VirtioNetClient(d0);
        var c1 = new VirtioNetClient(d1);
        var buffer = new byte[2048];

        // Teach the switch where port 1's MAC is, so the stream is forwarded, not flooded.
        Assert.True(c1.TrySend(Frame(dst: 0xff, src: 0x11, tag: 0)));
        Assert.Equal(64, c0.Receive(buffer, Wait));

        // 100 frames (3 bursts and a bit) queued as fast as the TX ring takes them; the inbound
        // queue (128) and port 1's RX ring (256 buffers) hold them all.
        const int Count = 100;
        for (int i = 0; i < Count; i++)
        {
            byte[] frame = Frame(dst: 0x11, src: 0x10, tag: 0);
            BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(14), (uint)i);
            Assert.True(c0.TrySend(frame));
        }

        for (int i = 0; i < Count; i++)
        {
            Assert.Equal(64, c1.Receive(buffer, Wait));
            Assert.Equal((uint)i, BinaryPrimitives.ReadUInt32BigEndian(buffer.AsSpan(14)));
        }

        Assert.Equal(-1, c1.Receive(buffer, TimeSpan.FromMilliseconds(200)));
    }

    [Fact]
    public void Held_rx_buffers_go_back_to_the_ring_at_a_stop_and_carry_the_frame_after_the_restart()
    {
        // Port 1's driver (MRG_RXBUF) has posted three 256-byte buffers; a 1000-byte frame needs
        // four, so the port holds the three it took until a fourth comes. A memory update and then
        // a stop (GET_VRING_BASE, as QEMU stops a VM) must each give them back at once: the base
        // counts nothing consumed, and after the restart a frame fills the same buffers, then one more.
        using NetSample sample = NetSample.Start(2, "--mode", "switch");
        using VmmDevice d0 = Connect(sample.SocketPaths[0]);
        using VmmDevice d1 = VmmDevice.Connect(sample.SocketPaths[1], new VmmDeviceOptions { QueueCount = 2, QueueSize = 256, Features = (ulong)VirtioNetFeatures.MergeableRxBuffers }, Wait);
        Assert.True((d1.AckedFeatures & (ulong)VirtioNetFeatures.MergeableRxBuffers) != 0 && d1.EventIdx);
        var c0 = new VirtioNetClient(d0);
        VmmQueue rx = d1.Queues[0];
        ulong[] buffers = [.. Enumerable.Range(0, 4).Select(_ => d1.Ram.Allocate(256, 64))];
        ushort[] heads = new ushort[4];
        for (int i = 0; i < 3; i++)
        {
            heads[i] = rx.Submit([new VirtqBuffer(buffers[i], 256, true)]);
        }

        byte[] frame = new byte[1000];
        Frame(dst: 0x11, src: 0x10, tag: 7).CopyTo(frame, 0);
        for (int i = 64; i < frame.Length; i++)
        {
            frame[i] = (byte)i;
        }

        Assert.True(c0.TrySend(frame));

        // The port took all three and asked to be kicked for the next one (avail_event 3).
        WaitUntil(() => rx.Driver.AvailEvent == 3, "port 1 did not take its three RX buffers");
        Assert.False(rx.TryGetCompletion(out _));

        var watch = Stopwatch.StartNew();
        d1.Frontend.SetMemoryTable([.. d1.Ram.Regions.Select(r => new VhostMemoryRegionInfo(r.GuestPhysicalAddress, r.Size, r.UserAddress, r.FileOffset, d1.Ram.FileHandle))]);
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(2), $"SET_MEM_TABLE took {watch.Elapsed.TotalMilliseconds:F0} ms");

        watch.Restart();
        uint stoppedAt = d1.Frontend.GetVringBase(0);
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(2), $"GET_VRING_BASE took {watch.Elapsed.TotalMilliseconds:F0} ms");
        Assert.Equal(0u, stoppedAt);
        Assert.False(rx.TryGetCompletion(out _));

        // Restarted as QEMU does, from that base; then the fourth buffer, and the frame again (the
        // port drops what arrives while its RX ring is stopped, as a NIC that is down does).
        SplitQueueDriver driver = rx.Driver;
        d1.Frontend.SetVringNum(0, driver.Size);
        d1.Frontend.SetVringBase(0, stoppedAt);
        d1.Frontend.SetVringAddress(0, new VringConfigData(driver.Size, driver.Size, VringFlags.None, VmmDevice.UserAddressOf(d1.Ram, driver.DescriptorTableAddress), VmmDevice.UserAddressOf(d1.Ram, driver.UsedRingAddress), VmmDevice.UserAddressOf(d1.Ram, driver.AvailRingAddress)));
        d1.Frontend.SetVringKick(0, rx.Kick);
        d1.Frontend.SetVringCall(0, rx.Call);
        d1.Frontend.SetVringEnable(0, true);
        heads[3] = rx.Submit([new VirtqBuffer(buffers[3], 256, true)]);
        Assert.True(c0.TrySend(frame));

        var received = new List<byte>();
        for (int i = 0; i < 4; i++)
        {
            VmmCompletion c = rx.WaitForCompletion(Wait);
            Assert.Equal((heads[i], i < 3 ? 256u : 1012u - 768u), (c.Head, c.Length));
            received.AddRange(d1.Ram.GetSpan(buffers[i], (int)c.Length).ToArray());
        }

        Assert.Equal(4, BinaryPrimitives.ReadUInt16LittleEndian(received.ToArray().AsSpan(10)));   // num_buffers
        Assert.Equal(frame, received.Skip(VirtioNetClient.HeaderSize));
    }

    [Theory]
    [InlineData("--mode", "bridge")]
    [InlineData("--mac", "01:00:00:00:00:01")]
    [InlineData("--ip", "2001:db8::1")]
    [InlineData("--num-queues", "0")]
    [InlineData("--frame-size", "59")]
    [InlineData("--fd", "-1")]
    public void Bad_usage_exits_2_with_a_message(string option, string value)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        foreach (string a in new[] { NetSample.AssemblyPath, "--socket-path", Path.Combine(Path.GetTempPath(), $"never-{Guid.NewGuid():N}.sock"), option, value })
        {
            psi.ArgumentList.Add(a);
        }

        using Process p = Process.Start(psi)!;
        string stderr = p.StandardError.ReadToEnd();
        Assert.True(p.WaitForExit(30_000));
        Assert.Equal(2, p.ExitCode);
        Assert.Contains(option == "--mode" ? "bridge" : option, stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void Print_capabilities_prints_the_net_type()
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, UseShellExecute = false };
        psi.ArgumentList.Add(NetSample.AssemblyPath);
        psi.ArgumentList.Add("--print-capabilities");
        using Process p = Process.Start(psi)!;
        string stdout = p.StandardOutput.ReadToEnd();
        Assert.True(p.WaitForExit(30_000));
        Assert.Equal(0, p.ExitCode);
        using var json = System.Text.Json.JsonDocument.Parse(stdout);
        Assert.Equal("net", json.RootElement.GetProperty("type").GetString());
    }

    private static void WaitUntil(Func<bool> condition, string message)
    {
        var watch = Stopwatch.StartNew();
        while (!condition())
        {
            Assert.True(watch.Elapsed < Wait, message);
            Thread.Sleep(1);
        }
    }

    /// <summary>
    /// A frame sent with a partial checksum (NEEDS_CSUM, one TX descriptor: the shape the one-copy
    /// path forwards in place) reaches a receiver that acked GUEST_CSUM as it was sent (flag kept,
    /// field untouched: one copy), and one that did not with the checksum completed and the flag
    /// cleared (the copying path: the one-copy path must not pass the partial sum on).
    /// </summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void A_partial_checksum_reaches_a_receiver_as_it_can_take_it(bool receiverTakesPartial)
    {
        using NetSample sample = NetSample.Start(2, "--mode", "cross");
        using VmmDevice d0 = VmmDevice.Connect(sample.SocketPaths[0], new VmmDeviceOptions { QueueCount = 2, QueueSize = 256, Features = (ulong)VirtioNetFeatures.Csum }, Wait);
        using VmmDevice d1 = VmmDevice.Connect(sample.SocketPaths[1], new VmmDeviceOptions { QueueCount = 2, QueueSize = 256, Features = receiverTakesPartial ? (ulong)VirtioNetFeatures.GuestCsum : 0 }, Wait);
        Assert.True((d0.AckedFeatures & (ulong)VirtioNetFeatures.Csum) != 0);
        Assert.Equal(receiverTakesPartial, (d1.AckedFeatures & (ulong)VirtioNetFeatures.GuestCsum) != 0);

        // IPv4/UDP, 20 payload bytes; csum_start 34 (the UDP header), csum_offset 6 (its checksum),
        // the field holding a made-up pseudo-header sum the device folds in.
        byte[] frame = new byte[14 + 20 + 8 + 20];
        Frame(dst: 0x11, src: 0x10, tag: 0).AsSpan(0, 12).CopyTo(frame);
        frame[12] = 0x08;
        frame[13] = 0x00;
        frame[14] = 0x45;
        frame[23] = 17;
        for (int i = 42; i < frame.Length; i++)
        {
            frame[i] = (byte)(i * 7);
        }

        BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(40), 0x1234);
        byte[] header = new byte[VirtioNetClient.HeaderSize];
        header[0] = 1; // NEEDS_CSUM
        BinaryPrimitives.WriteUInt16LittleEndian(header.AsSpan(6), 34);
        BinaryPrimitives.WriteUInt16LittleEndian(header.AsSpan(8), 6);

        VmmQueue rx = d1.Queues[0];
        ulong rxBuffer = d1.Ram.Allocate(2048, 64);
        ushort rxHead = rx.Submit([new VirtqBuffer(rxBuffer, 2048, true)]);
        ulong txBuffer = d0.Ram.Allocate(2048, 64);
        header.CopyTo(d0.Ram.GetSpan(txBuffer, header.Length));
        frame.CopyTo(d0.Ram.GetSpan(txBuffer + (ulong)header.Length, frame.Length));
        d0.Queues[1].Submit([new VirtqBuffer(txBuffer, (uint)(header.Length + frame.Length), false)]);

        VmmCompletion c = rx.WaitForCompletion(Wait);
        Assert.Equal(rxHead, c.Head);
        Assert.Equal((uint)(header.Length + frame.Length), c.Length);
        byte[] received = d1.Ram.GetSpan(rxBuffer, (int)c.Length).ToArray();
        byte[] expected = (byte[])frame.Clone();
        if (!receiverTakesPartial)
        {
            // The one's-complement sum of everything from csum_start, the field included.
            uint sum = 0;
            for (int i = 34; i < expected.Length; i += 2)
            {
                sum += (uint)(expected[i] << 8 | (i + 1 < expected.Length ? expected[i + 1] : 0));
            }

            while (sum > 0xffff)
            {
                sum = (sum & 0xffff) + (sum >> 16);
            }

            ushort checksum = (ushort)~sum;
            BinaryPrimitives.WriteUInt16BigEndian(expected.AsSpan(40), checksum == 0 ? (ushort)0xffff : checksum);
        }

        Assert.Equal(receiverTakesPartial ? 1 : 0, received[0]);
        Assert.Equal(expected, received.AsSpan(VirtioNetClient.HeaderSize).ToArray());
    }

    private static VmmDevice Connect(string socket) => VmmDevice.Connect(socket, new VmmDeviceOptions { QueueCount = 2, QueueSize = 256 }, Wait);

    internal static byte[] Frame(byte dst, byte src, byte tag)
    {
        var f = new byte[64];
        if (dst == 0xff)
        {
            f.AsSpan(0, 6).Fill(0xff);
        }
        else
        {
            PhysicalAddress.Parse($"02:00:00:00:00:{dst:x2}").GetAddressBytes().CopyTo(f, 0);
        }

        PhysicalAddress.Parse($"02:00:00:00:00:{src:x2}").GetAddressBytes().CopyTo(f, 6);
        f[12] = 0x88;
        f[13] = 0xb5;
        f[14] = tag;
        return f;
    }
}
