using Microsoft.Win32.SafeHandles;
using Vhost.HostileTests.Targets;
using Vhost.User.Messages;
using VhostUserBackend.Testing;

namespace Vhost.HostileTests.Frontend;

/// <summary>Small helpers the scenario catalogs share: fds of every kind, sessions with memory set up.</summary>
internal static class Kit
{
    public const ulong RamSize = 1 << 20;

    public static SafeFileHandle MemFd(long size = 1 << 20) => Fd.CreateMemFd("hostile", size);

    public static SafeFileHandle UnsealableMemFd(long size) => Vhost.TestSupport.UnsealableMemFd.Create(size);

    public static (SafeFileHandle Read, SafeFileHandle Write) Pipe()
    {
        int[] fds = new int[2];
        Assert.Equal(0, PipeInterop.pipe2(fds, 0x80000));
        return (Fd.Own(fds[0]), Fd.Own(fds[1]));
    }

    public static SafeFileHandle RegularFile(long size)
    {
        string path = Path.GetTempFileName();
        SafeFileHandle h = File.OpenHandle(path, FileMode.Open, FileAccess.ReadWrite);
        File.Delete(path);
        RandomAccess.SetLength(h, size);
        return h;
    }

    public static SafeFileHandle Directory() => File.OpenHandle("/tmp", FileMode.Open, FileAccess.Read);

    public static SafeFileHandle DevNull() => File.OpenHandle("/dev/null", FileMode.Open, FileAccess.ReadWrite);

    public static EventFd EventFd() => new();

    /// <summary>Opens a session that negotiated and set a memory table of <see cref="RamSize"/> at guest address 0.</summary>
    public static (HostileSession Session, GuestRam Ram) Ready(IDaemonTarget t, bool packed = false)
    {
        HostileSession s = HostileSession.Open(t.SocketPath);
        GuestRam ram = GuestRam.Create(RamSize);
        try
        {
            s.Negotiate(packed);
            s.MemoryTable(ram);
            return (s, ram);
        }
        catch
        {
            s.Dispose();
            ram.Dispose();
            throw;
        }
    }

    public static void WithReady(IDaemonTarget t, Action<HostileSession, GuestRam> attack, bool packed = false)
    {
        (HostileSession s, GuestRam ram) = Ready(t, packed);
        using (s)
        using (ram)
        {
            attack(s, ram);
            s.Drain(20);
        }
    }

    public static void WithNegotiated(IDaemonTarget t, Action<HostileSession> attack)
    {
        using HostileSession s = HostileSession.Open(t.SocketPath);
        s.Negotiate();
        attack(s);
        s.Drain(20);
    }

    public static void WithRaw(IDaemonTarget t, Action<HostileSession> attack)
    {
        using HostileSession s = HostileSession.Open(t.SocketPath);
        attack(s);
        s.Drain(20);
    }

    public static byte[] MemTable(uint claimed, params VhostUserMemoryRegion[] regions)
    {
        var body = new List<byte>(HostileSession.Bytes(new VhostUserMemoryHeader { RegionCount = claimed }));
        foreach (VhostUserMemoryRegion r in regions)
        {
            body.AddRange(HostileSession.Bytes(r));
        }

        return [.. body];
    }

    public static VhostUserMemoryRegion R(ulong gpa, ulong size, ulong userAddress, ulong offset) => new(gpa, size, userAddress, offset);

    public static byte[] U64(ulong v) => HostileSession.Bytes(new VhostUserU64 { Value = v });

    public static byte[] State(uint index, uint num) => HostileSession.Bytes(new VhostUserVringState(index, num));

    public static ulong UserAddress(GuestRam ram, ulong gpa) => ram.Regions[0].UserAddress + gpa;
}
