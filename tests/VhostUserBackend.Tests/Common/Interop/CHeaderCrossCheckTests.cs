using System.Runtime.InteropServices;
using VhostUserBackend.IO;

namespace VhostUserBackend.Tests.Common.Interop;

/// <summary>
/// Cross-checks VhostUserBackend's interop layer against this machine's C headers: every struct
/// of <see cref="InteropLayouts"/>, every C-named constant of its <c>Interop</c> (epoll, mmap,
/// memfd, fcntl, stat, io_uring) and the io_uring and fallocate enums, as C <c>_Static_assert</c>s
/// compiled with <c>cc</c>. Vhost.Tests checks Vhost's own copy of the shared files the same way.
/// </summary>
public sealed class CHeaderCrossCheckTests
{
    /// <summary>Constants that glibc 2.36 / Linux 6.1 headers may lack; they are checked where defined.</summary>
    private static readonly HashSet<string> MayBeUndefined = ["MFD_NOEXEC_SEAL"];

    private readonly ITestOutputHelper _output;

    public CHeaderCrossCheckTests(ITestOutputHelper output) => _output = output;

    [Fact]
    public void Structs_and_constants_agree_with_the_c_headers()
    {
        if (RuntimeInformation.ProcessArchitecture != Architecture.X64)
        {
            Assert.Skip("the layout table and the kernel headers checked here are x86_64's");
        }

        // io_uring's opcodes and register codes are C enumerators, the rest macros.
        (string Name, long Value)[] enumerators = CHeaders.EnumConstants<global::Interop.IoUringOpcode>()
            .Concat(CHeaders.EnumConstants<global::Interop.IoUringRegisterOpcode>())
            .ToArray();
        (string Name, long Value)[] constants = CHeaders.CNamedConstants(typeof(global::Interop))
            .Concat(CHeaders.EnumConstants<global::Interop.IoUringSqeFlags>())
            .Concat(CHeaders.EnumConstants<global::Interop.IoUringFeatures>())
            .Concat(CHeaders.EnumConstants<global::Interop.IoUringEnterFlags>())
            .Concat(CHeaders.EnumConstants<global::Interop.IoUringSqFlags>())
            .Concat([("FALLOC_FL_KEEP_SIZE", (long)FallocateMode.KeepSize), ("FALLOC_FL_PUNCH_HOLE", (long)FallocateMode.PunchHole), ("FALLOC_FL_ZERO_RANGE", (long)FallocateMode.ZeroRange)])
            .ToArray();
        string[] missing = CHeaders.CompileChecks(InteropLayouts.Rows, constants, CHeaders.EnumeratorAsserts(enumerators), _output.WriteLine);
        _output.WriteLine($"{constants.Length} macros and {enumerators.Length} enumerators; not defined by this machine's headers (not checked): " + string.Join(", ", missing));
        string[] unexpected = missing.Where(n => !MayBeUndefined.Contains(n)).ToArray();
        Assert.True(unexpected.Length == 0, "the C headers do not define: " + string.Join(", ", unexpected));

        // The constants Vhost does not compile are among those checked here.
        string[] names = constants.Concat(enumerators).Select(c => c.Name).ToArray();
        Assert.Contains("EPOLLIN", names);
        Assert.Contains("MAP_SHARED", names);
        Assert.Contains("IORING_OFF_SQES", names);
        Assert.Contains("IORING_OP_READV", names);
    }
}
