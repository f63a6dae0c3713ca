using System.Runtime.InteropServices;
using VhostUserBackend.IO;

namespace VhostUserBackend.Tests.Common.Interop;

/// <summary>
/// Cross-checks VhostUserBackend's own interop (io_uring) against this machine's C headers: every
/// struct of <see cref="InteropLayouts"/>, every C-named constant of <c>IoUringInterop</c> and the
/// io_uring and fallocate enums, as C <c>_Static_assert</c>s compiled with <c>cc</c>. The src/Common
/// layer (epoll and mmap included) is compiled into Vhost only and checked by Vhost.Tests.
/// </summary>
public sealed class CHeaderCrossCheckTests
{
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
        (string Name, long Value)[] enumerators = CHeaders.EnumConstants<IoUringInterop.IoUringOpcode>()
            .Concat(CHeaders.EnumConstants<IoUringInterop.IoUringRegisterOpcode>())
            .ToArray();
        (string Name, long Value)[] constants = CHeaders.CNamedConstants(typeof(IoUringInterop))
            .Concat(CHeaders.EnumConstants<IoUringInterop.IoUringSqeFlags>())
            .Concat(CHeaders.EnumConstants<IoUringInterop.IoUringFeatures>())
            .Concat(CHeaders.EnumConstants<IoUringInterop.IoUringEnterFlags>())
            .Concat(CHeaders.EnumConstants<IoUringInterop.IoUringSqFlags>())
            .Concat([("FALLOC_FL_KEEP_SIZE", (long)FallocateMode.KeepSize), ("FALLOC_FL_PUNCH_HOLE", (long)FallocateMode.PunchHole), ("FALLOC_FL_ZERO_RANGE", (long)FallocateMode.ZeroRange)])
            .ToArray();
        string[] missing = CHeaders.CompileChecks(InteropLayouts.Rows, constants, CHeaders.EnumeratorAsserts(enumerators), _output.WriteLine);
        _output.WriteLine($"{constants.Length} macros and {enumerators.Length} enumerators; not defined by this machine's headers (not checked): " + string.Join(", ", missing));
        Assert.True(missing.Length == 0, "the C headers do not define: " + string.Join(", ", missing));

        string[] names = constants.Concat(enumerators).Select(c => c.Name).ToArray();
        Assert.Contains("IORING_OFF_SQES", names);
        Assert.Contains("IORING_OP_READV", names);
    }
}
