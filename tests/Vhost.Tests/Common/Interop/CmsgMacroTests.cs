namespace Vhost.Tests.Common.Interop;

/// <summary>The CMSG_LEN and CMSG_SPACE macros against glibc's definitions (the struct layouts are in the shared <see cref="InteropLayoutTests"/>).</summary>
public sealed class CmsgMacroTests
{
    [Fact]
    public void Cmsg_macros_follow_glibc()
    {
        // CMSG_LEN does not align the payload; CMSG_SPACE does.
        Assert.Equal(16, global::Interop.CmsgLen(0));
        Assert.Equal(20, global::Interop.CmsgLen(4));
        Assert.Equal(24, global::Interop.CmsgLen(8));
        Assert.Equal(28, global::Interop.CmsgLen(12));
        Assert.Equal(144, global::Interop.CmsgLen(128));
        Assert.Equal(16, global::Interop.CmsgSpace(0));
        Assert.Equal(24, global::Interop.CmsgSpace(4));
        Assert.Equal(24, global::Interop.CmsgSpace(8));
        Assert.Equal(32, global::Interop.CmsgSpace(12));
        Assert.Equal(144, global::Interop.CmsgSpace(128));
    }
}
