using Vhost.HostileTests.Frontend;
using Vhost.HostileTests.Targets;
using Vhost.User;
using VhostUserBackend;
using VhostUserBackend.Testing;
using Vhost.Vmm;

namespace Vhost.HostileTests.Memory;

/// <summary>The shrinking-memory-file defence: seals checked and added at map time, strict mode, and what the kernel then refuses.</summary>
[Collection("FdCount")]
public sealed class MemoryFileDefenceTests
{
    [Fact]
    public void Default_policy_seals_the_frontends_memfd_so_the_kernel_refuses_to_shrink_it()
    {
        using var target = new InProcessTarget();
        using VmmDevice dev = VmmDevice.Connect(target.SocketPath, target.Exercise.Options);
        int seals = Fd.GetSeals(dev.Ram.FileHandle);
        Assert.NotEqual(0, seals & Interop.F_SEAL_SHRINK);

        // The hostile front-end tries to shrink guest RAM under the daemon: the kernel says no.
        var e = Assert.Throws<Vhost.VhostException>(() => Fd.Truncate(dev.Ram.FileHandle, 4096));
        Assert.Equal(Vhost.Errno.EPERM, e.Errno);

        // Growing stays allowed (QEMU's own seal=on also forbids it; the daemon only needs no shrink).
        Fd.Truncate(dev.Ram.FileHandle, (long)dev.Ram.Regions[0].Size * 2);
        target.Exercise.Run(dev, TimeSpan.FromSeconds(5));
    }

    [Fact]
    public void A_memfd_sealed_like_QEMU_memory_backend_memfd_works_in_strict_mode()
    {
        using var target = new InProcessTarget(new VhostUserDaemonOptions { MemoryFilePolicy = GuestMemoryFilePolicy.RequireShrinkSeal });
        using GuestRam ram = GuestRam.Create(2 << 20);

        // QEMU memory-backend-memfd, seal=on (its default): F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL.
        Fd.AddSeals(ram.FileHandle, Interop.F_SEAL_GROW | Interop.F_SEAL_SHRINK | Interop.F_SEAL_SEAL);
        using HostileSession s = HostileSession.Open(target.SocketPath);
        s.Negotiate();
        Assert.Equal(0, s.MemoryTable(ram));
        Assert.Equal(Vhost.Errno.EPERM, Assert.Throws<Vhost.VhostException>(() => Fd.Truncate(ram.FileHandle, 4096)).Errno);
    }

    [Fact]
    public void Strict_mode_refuses_an_unsealable_memfd_with_a_failed_reply_and_a_clear_reason()
    {
        var logs = new TestLogger();
        var device = new EchoDevice();
        string path = Path.Combine(Path.GetTempPath(), $"strict-{Guid.NewGuid():N}.sock");
        using var daemon = new VhostUserDaemon(device, new VhostUserDaemonOptions { MemoryFilePolicy = GuestMemoryFilePolicy.RequireShrinkSeal }, logs);
        daemon.Start(path);

        // DPDK's memfds (no MFD_ALLOW_SEALING) look like this: F_SEAL_SEAL only.
        using var memfd = Kit.UnsealableMemFd(1 << 20);
        Assert.Equal(Interop.F_SEAL_SEAL, Fd.GetSeals(memfd));
        using var frontend = VhostUserFrontend.Connect(path, TimeSpan.FromSeconds(5));
        frontend.SetOwner();
        frontend.SetFeatures(frontend.GetFeatures() & (ulong)Vhost.User.Messages.VhostUserVirtioFeatures.ProtocolFeatures);
        frontend.SetProtocolFeatures(frontend.GetProtocolFeatures() & Vhost.User.Messages.VhostUserProtocolFeatures.ReplyAck);
        Assert.ThrowsAny<VhostUserException>(() => frontend.SetMemoryTable([new Vhost.VhostMemoryRegionInfo(0, 1 << 20, 0x7f0000000000, 0, memfd)]));
        SpinWait.SpinUntil(() => logs.Lines.Any(m => m.Contains("not sealed against shrinking", StringComparison.Ordinal)), 2000);
        Assert.True(logs.Lines.Any(m => m.Contains("not sealed against shrinking", StringComparison.Ordinal)), string.Join("\n", logs.Lines));

        // The daemon is fine and still serves a sealed front-end.
        frontend.Dispose();
        using var ok = new InProcessTarget(new VhostUserDaemonOptions { MemoryFilePolicy = GuestMemoryFilePolicy.RequireShrinkSeal });
        ScenarioRunner.CheckHealthy(ok);
    }

    [Fact]
    public void Default_mode_accepts_an_unsealable_memfd_as_DPDK_sends_it()
    {
        using var target = new InProcessTarget();
        using var memfd = Kit.UnsealableMemFd(1 << 20);
        using HostileSession s = HostileSession.Open(target.SocketPath);
        s.Negotiate();
        long ack = s.Send(Vhost.User.Messages.FrontendRequest.SetMemTable, Kit.MemTable(1, Kit.R(0, 1 << 20, 0x7f0000000000, 0)), [memfd]);
        Assert.Equal(0, ack);
    }

    [Fact]
    public void Trust_mode_leaves_the_file_unsealed()
    {
        using var target = new InProcessTarget(new VhostUserDaemonOptions { MemoryFilePolicy = GuestMemoryFilePolicy.Trust });
        using VmmDevice dev = VmmDevice.Connect(target.SocketPath, target.Exercise.Options);
        Assert.Equal(0, Fd.GetSeals(dev.Ram.FileHandle) & Interop.F_SEAL_SHRINK);
    }

    [Fact]
    public void The_inflight_memfd_the_daemon_hands_out_cannot_be_shrunk_by_the_frontend()
    {
        using var target = new InProcessTarget();
        using VhostUserFrontend f = VhostUserFrontend.Connect(target.SocketPath, TimeSpan.FromSeconds(5));
        f.SetOwner();
        f.SetFeatures(f.GetFeatures() & (ulong)Vhost.User.Messages.VhostUserVirtioFeatures.ProtocolFeatures);
        f.SetProtocolFeatures(f.GetProtocolFeatures() & (Vhost.User.Messages.VhostUserProtocolFeatures.InflightShmFd | Vhost.User.Messages.VhostUserProtocolFeatures.ReplyAck));
        using (Microsoft.Win32.SafeHandles.SafeFileHandle fd = f.GetInflightFd(2, 64, out Vhost.User.Messages.VhostUserInflight d))
        {
            Assert.True(d.MmapSize > 0);
            Assert.Equal(Vhost.Errno.EPERM, Assert.Throws<Vhost.VhostException>(() => Fd.Truncate(fd, 0)).Errno);
        }
    }
}
