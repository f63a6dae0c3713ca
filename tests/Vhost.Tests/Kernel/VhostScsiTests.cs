using System.Text;
using Vhost.Kernel;

namespace Vhost.Tests.Kernel;

/// <summary>vhost-scsi: the target struct and argument checks (the test guest's kernel has no LIO target to bind).</summary>
public sealed class VhostScsiTests
{
    [Fact]
    public unsafe void Target_holds_the_wwpn_nul_terminated_and_the_tpgt()
    {
        global::Interop.vhost_scsi_target t = VhostScsi.BuildTarget("naa.500140512345678", 7);
        var wwpn = new ReadOnlySpan<byte>(t.vhost_wwpn, 224);
        Assert.Equal("naa.500140512345678"u8.ToArray(), wwpn[..19].ToArray());
        Assert.True(wwpn[19..].IndexOfAnyExcept((byte)0) < 0);
        Assert.Equal(7, t.vhost_tpgt);
        Assert.Equal(0, t.abi_version);
        Assert.Equal(0, t.reserved);

        string longest = new('a', VhostScsi.MaxWwpnLength);
        global::Interop.vhost_scsi_target full = VhostScsi.BuildTarget(longest, 1);
        Assert.Equal(0, full.vhost_wwpn[223]);
        Assert.Equal(Encoding.ASCII.GetBytes(longest), new ReadOnlySpan<byte>(full.vhost_wwpn, 223).ToArray());
    }

    [Theory]
    [InlineData("")]
    [InlineData("naa.\0x")]
    [InlineData("naa.é")]
    public void Bad_wwpn_is_rejected(string wwpn)
    {
        using var scsi = new VhostScsi(VhostKernelBackendTests.DevNull());
        Assert.ThrowsAny<ArgumentException>(() => scsi.SetEndpoint(wwpn, 1));
        Assert.ThrowsAny<ArgumentException>(() => scsi.ClearEndpoint(wwpn, 1));
    }

    [Fact]
    public void Too_long_wwpn_is_rejected_and_null_too()
    {
        using var scsi = new VhostScsi(VhostKernelBackendTests.DevNull());
        Assert.Contains("223", Assert.Throws<ArgumentException>(() => scsi.SetEndpoint(new string('a', 224), 1)).Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentNullException>(() => scsi.SetEndpoint(null!, 1));
    }

    [Fact]
    public void Scsi_ioctls_on_a_non_vhost_fd_are_ENOTTY()
    {
        using var scsi = new VhostScsi(VhostKernelBackendTests.DevNull());
        (Action Call, string Name)[] calls =
        [
            (() => scsi.SetEndpoint("naa.5001405", 1), "VHOST_SCSI_SET_ENDPOINT"),
            (() => scsi.ClearEndpoint("naa.5001405", 1), "VHOST_SCSI_CLEAR_ENDPOINT"),
            (() => scsi.GetAbiVersion(), "VHOST_SCSI_GET_ABI_VERSION"),
            (() => scsi.SetEventsMissed(true), "VHOST_SCSI_SET_EVENTS_MISSED"),
            (() => scsi.GetEventsMissed(), "VHOST_SCSI_GET_EVENTS_MISSED"),
        ];
        foreach ((Action call, string name) in calls)
        {
            VhostException e = Assert.Throws<VhostException>(call);
            Assert.Equal(Errno.ENOTTY, e.Errno);
            Assert.Equal($"ioctl({name})", e.Operation);
            Assert.Contains("not a vhost-scsi device", e.Message, StringComparison.Ordinal);
        }
    }
}
