using System.Buffers.Binary;
using Microsoft.Win32.SafeHandles;
using Vhost.Kernel;
using Vhost.Virtio;
using Vhost.Vmm;
using VhostUserBackend.Testing;
using VhostUserBackend.Virtio;

namespace Vhost.KernelTests;

/// <summary>The real <c>/dev/vhost-vsock</c>: a CID, start/stop, and a connection request from a guest socket in the RX ring.</summary>
[Collection(KernelDeviceCollection.Name)]
public sealed class VhostVsockTests
{
    private const ulong VersionOne = (ulong)VirtioFeatures.Version1;
    private const int AF_VSOCK = 40;
    private const ushort OpRequest = 1;

    [Fact]
    public void Connect_to_the_cid_puts_an_op_request_in_rx_ring_0()
    {
        KernelDevice.Require(KernelDevice.Vsock);
        const uint cid = 3;
        const uint port = 1234;
        using GuestRam ram = GuestRam.Create(1 << 20);
        using var vsock = VhostVsock.Open();
        using var device = new VmmVhostDevice(vsock, ram);
        device.SetOwner();
        Assert.Equal(VersionOne, device.SetFeatures(0, required: VersionOne));
        vsock.SetGuestCid(cid);
        device.SetMemoryTable();
        VmmQueue rx = device.AddQueue(16);
        VmmQueue tx = device.AddQueue(16);
        var buffers = new Dictionary<ushort, ulong>();
        for (int i = 0; i < 4; i++)
        {
            ulong buffer = ram.Allocate(2048, 16);
            buffers[rx.Submit([new VirtqBuffer(buffer, 2048, true)])] = buffer;
        }

        vsock.Start();
        using SafeFileHandle socket = ConnectVsock(cid, port);
        (ushort head, uint length) = rx.WaitForCompletion(TimeSpan.FromSeconds(5));
        Assert.True(rx.WaitForCalls(1, TimeSpan.FromSeconds(5)), $"RX used idx {rx.Driver.DeviceUsedIndex}, no call");
        Assert.True(length >= 44, $"packet length {length}");

        // struct virtio_vsock_hdr (little-endian): src_cid u64, dst_cid u64, src_port u32, dst_port u32, len u32, type u16, op u16, ...
        ReadOnlySpan<byte> hdr = ram.GetSpan(buffers[head], 44);
        Assert.Equal(2UL, BinaryPrimitives.ReadUInt64LittleEndian(hdr));
        Assert.Equal((ulong)cid, BinaryPrimitives.ReadUInt64LittleEndian(hdr[8..]));
        Assert.Equal(port, BinaryPrimitives.ReadUInt32LittleEndian(hdr[20..]));
        Assert.Equal(OpRequest, BinaryPrimitives.ReadUInt16LittleEndian(hdr[30..]));
        vsock.Stop();

        // GET_VRING_BASE: RX stopped after the buffers the kernel took (at least the one used), TX untouched.
        uint[] bases = device.Stop();
        Assert.InRange(bases[0], 1u, 4u);
        Assert.Equal(0u, bases[1]);
        Assert.Equal(0L, tx.KicksSent);
    }

    [Fact]
    public void A_cid_in_use_by_another_device_is_refused()
    {
        KernelDevice.Require(KernelDevice.Vsock);
        using var first = VhostVsock.Open();
        using var second = VhostVsock.Open();
        first.SetGuestCid(7);
        Assert.Equal(Errno.EADDRINUSE, Assert.Throws<VhostException>(() => second.SetGuestCid(7)).Errno);
        second.SetGuestCid(8);
    }

    private static unsafe SafeFileHandle ConnectVsock(uint cid, uint port)
    {
        int fd = global::Interop.socket(AF_VSOCK, global::Interop.SOCK_STREAM | global::Interop.SOCK_NONBLOCK | global::Interop.SOCK_CLOEXEC, 0);
        Errno socketErrno = global::Interop.LastErrno;
        Assert.True(fd >= 0, $"socket(AF_VSOCK) failed: {socketErrno}");
        SafeFileHandle handle = Fd.Own(fd);

        // struct sockaddr_vm: family u16, reserved u16, port u32, cid u32, flags u8, zero[3].
        global::Interop.sockaddr_un storage = default;
        byte* sa = (byte*)&storage;
        *(ushort*)sa = AF_VSOCK;
        *(uint*)(sa + 4) = port;
        *(uint*)(sa + 8) = cid;
        int r = global::Interop.connect(fd, &storage, 16);
        Errno errno = r == 0 ? Errno.None : global::Interop.LastErrno;
        Assert.True(r == 0 || errno == Errno.EINPROGRESS, $"connect(AF_VSOCK cid {cid} port {port}): {errno}");
        return handle;
    }
}
