namespace Vhost.IntegrationTests.Peers;

/// <summary>qemu-storage-daemon (qemu-system-common) exporting a raw image as vhost-user-blk.</summary>
internal static class StorageDaemonPeer
{
    public const string Binary = "/usr/bin/qemu-storage-daemon";

    public static PeerProcess Start(long diskBytes, out string diskPath)
    {
        Assert.SkipUnless(File.Exists(Binary), $"{Binary} not installed (apt package qemu-system-common; tools/install-test-deps.sh installs it)");
        DirectoryInfo dir = PeerProcess.CreateDirectory("qsd");
        diskPath = Path.Combine(dir.FullName, "disk.img");
        using (FileStream f = File.Create(diskPath))
        {
            f.SetLength(diskBytes);
        }

        string socket = Path.Combine(dir.FullName, "blk.sock");
        return PeerProcess.Start("qemu-storage-daemon", dir, socket, 60, Binary,
        [
            "--blockdev", $"driver=file,node-name=file0,filename={diskPath}",
            "--blockdev", "driver=raw,node-name=disk0,file=file0",
            "--export", $"type=vhost-user-blk,id=exp0,node-name=disk0,addr.type=unix,addr.path={socket},writable=on,num-queues=1",
        ]);
    }
}
