namespace Vhost.KernelTests;

/// <summary>Skips a test honestly when its kernel device is missing (the bare host has no vhost modules).</summary>
internal static class KernelDevice
{
    public const string Net = "/dev/vhost-net";
    public const string Vsock = "/dev/vhost-vsock";
    public const string Vdpa = "/dev/vhost-vdpa-0";
    public const string Tun = "/dev/net/tun";

    /// <summary>Set by the host-side runner when it created the VDUSE block device: then a missing vDPA device is a failure.</summary>
    public const string ExpectVdpaVariable = "VHOST_KERNEL_TESTS_EXPECT_VDPA";

    public static void Require(string path)
    {
        if (File.Exists(path))
        {
            return;
        }

        if (path == Vdpa && Environment.GetEnvironmentVariable(ExpectVdpaVariable) == "1")
        {
            string log = File.Exists("/run/qsd.log") ? File.ReadAllText("/run/qsd.log") : "(no /run/qsd.log)";
            Assert.Fail($"{path} is missing although the VDUSE device was to be created; qemu-storage-daemon log: {log}");
        }

        Assert.Skip($"needs {path}: runs inside the QEMU guest (tests/Vhost.IntegrationTests KernelGuestTests runs this exe there)");
    }
}
