using System.Globalization;
using System.Runtime.InteropServices;

namespace Vhost.Tests.Common.Interop;

/// <summary>
/// Cross-checks Vhost's interop layer against this machine's C headers (through the shared
/// <see cref="CHeaders"/>): <c>_Static_assert</c>s of every struct's size, field offsets and field
/// sizes (from <see cref="InteropLayouts"/>), of every C-named constant in <c>Interop</c>, every
/// <see cref="Errno"/> value and every <c>VHOST_*</c> ioctl number the header defines, compiled
/// with <c>cc</c>. A wrong value is a compile error naming the check.
/// </summary>
public sealed class CHeaderCrossCheckTests
{
    /// <summary>Interop constants that glibc 2.36 / Linux 6.1 headers may lack; they are checked where defined.</summary>
    private static readonly HashSet<string> MayBeUndefined = ["MFD_NOEXEC_SEAL"];

    private readonly ITestOutputHelper _output;

    public CHeaderCrossCheckTests(ITestOutputHelper output) => _output = output;

    [Fact]
    public void Structs_constants_and_vhost_ioctls_agree_with_the_c_headers()
    {
        if (RuntimeInformation.ProcessArchitecture != Architecture.X64)
        {
            Assert.Skip("the layout table and the kernel headers checked here are x86_64's");
        }

        (string Name, long Value)[] constants = CHeaders.CNamedConstants(typeof(global::Interop))
            .Concat(CHeaders.CNamedConstants(typeof(VhostIoctls)).Where(c => c.Name.StartsWith("VHOST_", StringComparison.Ordinal)))
            .Concat(Enum.GetValues<Errno>().Where(e => e != Errno.None).Select(e => (e.ToString(), (long)e)))
            .ToArray();

        // The _IOC field layout that IoctlEncoding hard-codes, and the x86_64 userfaultfd number.
        long userfaultfd = global::Interop.SYS_userfaultfd_x64;
        string extra = string.Create(CultureInfo.InvariantCulture, $"""
            _Static_assert(_IOC_NRSHIFT == {IoctlEncoding.NumberShift} && _IOC_TYPESHIFT == {IoctlEncoding.TypeShift} && _IOC_SIZESHIFT == {IoctlEncoding.SizeShift} && _IOC_DIRSHIFT == {IoctlEncoding.DirectionShift}, "_IOC shifts");
            _Static_assert(_IOC_NRBITS == {IoctlEncoding.NumberBits} && _IOC_TYPEBITS == {IoctlEncoding.TypeBits} && _IOC_SIZEBITS == {IoctlEncoding.SizeBits} && _IOC_DIRBITS == {IoctlEncoding.DirectionBits}, "_IOC widths");
            _Static_assert((_IOC_READ << _IOC_DIRSHIFT) == {IoctlEncoding.Read}u && (_IOC_WRITE << _IOC_DIRSHIFT) == {IoctlEncoding.Write}u && (_IOC_NONE << _IOC_DIRSHIFT) == {IoctlEncoding.None}u, "_IOC directions");
            _Static_assert(SYS_userfaultfd == {userfaultfd}, "SYS_userfaultfd (x86_64)");

            """);
        string[] missing = CHeaders.CompileChecks(InteropLayouts.Rows, constants, extra, _output.WriteLine);
        _output.WriteLine("not defined by this machine's headers (not checked): " + string.Join(", ", missing));
        string[] unexpected = missing.Where(n => !n.StartsWith("VHOST_", StringComparison.Ordinal) && !MayBeUndefined.Contains(n)).ToArray();
        Assert.True(unexpected.Length == 0, "the C headers do not define: " + string.Join(", ", unexpected));

        // The header defines at least the ioctls rust-vmm binds, so those were checked for real.
        string[] vhostChecked = constants.Select(c => c.Name).Where(n => n.StartsWith("VHOST_", StringComparison.Ordinal)).Except(missing).ToArray();
        Assert.Contains("VHOST_GET_FEATURES", vhostChecked);
        Assert.Contains("VHOST_VDPA_SUSPEND", vhostChecked);
        Assert.True(vhostChecked.Length >= 40, $"only {vhostChecked.Length} VHOST_* ioctls were checked");
    }

    [Fact]
    public void A_wrong_value_fails_to_compile()
    {
        // The negative control: proves the harness reports a mismatch instead of passing vacuously.
        string compiler = CHeaders.CompilerOrSkip();
        DirectoryInfo dir = Directory.CreateTempSubdirectory("vhost-cabi-");
        try
        {
            string file = Path.Combine(dir.FullName, "wrong.c");
            File.WriteAllText(file, "#include <sys/socket.h>\n_Static_assert(sizeof(struct msghdr) == 57, \"sizeof(struct msghdr)\");\n");
            (int exit, string text) = CHeaders.Compile(compiler, file);
            Assert.NotEqual(0, exit);
            Assert.Contains("sizeof(struct msghdr)", text);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }
}
