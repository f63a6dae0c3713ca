using VhostProbe.Devices;
using Vhost.Vmm;

namespace Vhost.IntegrationTests.Peers;

/// <summary>The .NET front-end sending FUSE requests to the C and the Rust virtiofsd.</summary>
[Collection(PeerCollection.Name)]
public sealed class VirtiofsdTests
{
    [Fact]
    public void C_virtiofsd_init_lookup_getattr() => InitLookupGetAttr(VirtiofsdPeer.StartC(out string share), share);

    [Fact]
    public void Rust_virtiofsd_init_lookup_getattr() => InitLookupGetAttr(VirtiofsdPeer.StartRust(out string share), share);

    private static void InitLookupGetAttr(PeerProcess peer, string share)
    {
        using (peer)
        {
            byte[] content = new byte[12345];
            new Random(26).NextBytes(content);
            File.WriteAllBytes(Path.Combine(share, "created-by-test.bin"), content);

            using VmmDevice dev = VmmDevice.Connect(peer.SocketPath, new VmmDeviceOptions { QueueCount = 2, QueueSize = 64 });
            var fs = new VirtioFsClient(dev);
            fs.Init(out uint major, out uint minor, out uint maxWrite);
            Assert.Equal(7u, major);
            Assert.True(minor >= VirtioFsClient.KernelMinorVersion - 10, $"minor {minor}");
            Assert.True(maxWrite > 0);

            FuseAttr root = fs.GetAttr(VirtioFsClient.RootNodeId);
            Assert.Equal(0x4000u, root.Mode & 0xF000u); // S_IFDIR

            FuseAttr attr = fs.Lookup(VirtioFsClient.RootNodeId, "created-by-test.bin", out ulong node);
            Assert.Equal((ulong)content.Length, attr.Size);
            Assert.Equal(0x8000u, attr.Mode & 0xF000u); // S_IFREG
            Assert.NotEqual(VirtioFsClient.RootNodeId, node);
            Assert.Equal((ulong)content.Length, fs.GetAttr(node).Size);

            FuseException missing = Assert.Throws<FuseException>(() => fs.Lookup(VirtioFsClient.RootNodeId, "no-such-file", out _));
            Assert.Equal(-2, missing.Error); // -ENOENT
        }
    }
}
