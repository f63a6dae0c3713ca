using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.RegularExpressions;

namespace Vhost.Tests.Common.Interop;

/// <summary>
/// Cross-checks the interop layer against this machine's C headers: the test writes C files with
/// <c>_Static_assert</c>s of every struct's size, field offsets and field sizes (from
/// <see cref="InteropLayouts"/>), of every C-named constant in <c>Interop</c>, every
/// <see cref="Errno"/> value and every <c>VHOST_*</c> ioctl number the header defines, and
/// compiles them with <c>cc</c>. A wrong value is a compile error naming the check.
/// </summary>
public sealed partial class CHeaderCrossCheckTests
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

        string compiler = FindCompiler() ?? SkipNoCompiler();
        DirectoryInfo dir = Directory.CreateTempSubdirectory("vhost-cabi-");
        {
            var checkedNames = new List<string>();
            string libc = Path.Combine(dir.FullName, "libc.c");
            string kernel = Path.Combine(dir.FullName, "kernel.c");
            string generic = Path.Combine(dir.FullName, "generic.c");
            File.WriteAllText(libc, LibcUnit(checkedNames));
            File.WriteAllText(kernel, StructUnit(CHeaderSet.KernelX64, "#include <linux/types.h>\n#include <asm/stat.h>\n#include <asm/statfs.h>\n#include <linux/eventpoll.h>\n"));
            File.WriteAllText(generic, StructUnit(CHeaderSet.AsmGeneric64, "#include <asm-generic/stat.h>\n"));

            (int exit, string text) = Compile(compiler, libc, kernel, generic);
            _output.WriteLine(text);
            Assert.True(exit == 0, $"{compiler} rejected the ABI checks (files kept in {dir.FullName}):\n{text}");

            string[] missing = MissingPattern().Matches(text).Select(m => m.Groups[1].Value).Distinct().ToArray();
            _output.WriteLine("not defined by this machine's headers (not checked): " + string.Join(", ", missing));
            string[] unexpected = missing.Where(n => !n.StartsWith("VHOST_", StringComparison.Ordinal) && !MayBeUndefined.Contains(n)).ToArray();
            Assert.True(unexpected.Length == 0, "the C headers do not define: " + string.Join(", ", unexpected));

            // The header defines at least the ioctls rust-vmm binds, so those were checked for real.
            string[] vhostChecked = checkedNames.Where(n => n.StartsWith("VHOST_", StringComparison.Ordinal)).Except(missing).ToArray();
            Assert.Contains("VHOST_GET_FEATURES", vhostChecked);
            Assert.Contains("VHOST_VDPA_SUSPEND", vhostChecked);
            Assert.True(vhostChecked.Length >= 40, $"only {vhostChecked.Length} VHOST_* ioctls were checked");
            dir.Delete(recursive: true); // kept for inspection when a check fails
        }
    }

    [Fact]
    public void A_wrong_value_fails_to_compile()
    {
        // The negative control: proves the harness reports a mismatch instead of passing vacuously.
        string compiler = FindCompiler() ?? SkipNoCompiler();
        DirectoryInfo dir = Directory.CreateTempSubdirectory("vhost-cabi-");
        try
        {
            string file = Path.Combine(dir.FullName, "wrong.c");
            File.WriteAllText(file, "#include <sys/socket.h>\n_Static_assert(sizeof(struct msghdr) == 57, \"sizeof(struct msghdr)\");\n");
            (int exit, string text) = Compile(compiler, file);
            Assert.NotEqual(0, exit);
            Assert.Contains("sizeof(struct msghdr)", text);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    private static string SkipNoCompiler()
    {
        Assert.Skip("no C compiler (cc, gcc or clang) on PATH; ./test.sh installs gcc");
        return null!;
    }

    private static string? FindCompiler()
    {
        string[] path = (Environment.GetEnvironmentVariable("PATH") ?? "/usr/bin:/bin").Split(':', StringSplitOptions.RemoveEmptyEntries);
        foreach (string name in new[] { "cc", "gcc", "clang" })
        {
            foreach (string directory in path)
            {
                string candidate = Path.Combine(directory, name);
                if (File.Exists(candidate))
                {
                    return candidate;
                }
            }
        }

        return null;
    }

    private static (int Exit, string Output) Compile(string compiler, params string[] files)
    {
        var info = new ProcessStartInfo(compiler)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string arg in new[] { "-std=gnu11", "-fsyntax-only" }.Concat(files))
        {
            info.ArgumentList.Add(arg);
        }

        using Process process = Process.Start(info)!;
        Task<string> stdout = process.StandardOutput.ReadToEndAsync();
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(60_000))
        {
            process.Kill();
            Assert.Fail($"{compiler} did not finish within 60 s");
        }

        string output = stdout.Result + stderr.Result;

        // Process.Dispose leaves synchronously read redirect pipes to the finalizer; close them now.
        process.StandardOutput.Dispose();
        process.StandardError.Dispose();
        return (process.ExitCode, output);
    }

    private static string StructUnit(CHeaderSet headers, string includes)
    {
        var c = new StringBuilder("#include <stddef.h>\n").Append(includes).Append('\n');
        foreach (LayoutRow row in InteropLayouts.Rows.Where(r => r.Headers == headers))
        {
            Assert.NotNull(row.CType);
            c.Append(CultureInfo.InvariantCulture, $"_Static_assert(sizeof({row.CType}) == {row.Size}, \"sizeof({row.CType}) == {row.Size} ({row.Type.Name})\");\n");
            foreach (FieldRow field in row.Fields)
            {
                string cName = field.CName ?? field.Name;
                c.Append(CultureInfo.InvariantCulture, $"_Static_assert(offsetof({row.CType}, {cName}) == {field.Offset}, \"offsetof({row.CType}, {cName}) == {field.Offset}\");\n");
                if (field.CName is null)
                {
                    c.Append(CultureInfo.InvariantCulture, $"_Static_assert(sizeof((({row.CType}*)0)->{cName}) == {field.Size}, \"sizeof({row.CType}.{cName}) == {field.Size}\");\n");
                }
            }
        }

        return c.ToString();
    }

    private static string LibcUnit(List<string> checkedNames)
    {
        var c = new StringBuilder("""
            #define _GNU_SOURCE
            #include <stddef.h>
            #include <errno.h>
            #include <fcntl.h>
            #include <poll.h>
            #include <signal.h>
            #include <sys/epoll.h>
            #include <sys/eventfd.h>
            #include <sys/ioctl.h>
            #include <sys/mman.h>
            #include <sys/socket.h>
            #include <sys/stat.h>
            #include <sys/syscall.h>
            #include <sys/time.h>
            #include <sys/timerfd.h>
            #include <sys/uio.h>
            #include <unistd.h>
            #include <sys/un.h>
            #include <linux/magic.h>
            #include <linux/userfaultfd.h>
            #include <linux/vhost.h>

            """);
        c.Append(StructUnit(CHeaderSet.Libc, string.Empty));

        // Every C-named numeric constant of the interop layer, the vhost ioctls and errno.
        IEnumerable<(string Name, long Value)> constants = CNamedConstants(typeof(global::Interop))
            .Concat(CNamedConstants(typeof(VhostIoctls)).Where(c => c.Name.StartsWith("VHOST_", StringComparison.Ordinal)))
            .Concat(Enum.GetValues<Errno>().Where(e => e != Errno.None).Select(e => (e.ToString(), (long)e)));
        foreach ((string name, long value) in constants)
        {
            checkedNames.Add(name);
            c.Append(CultureInfo.InvariantCulture, $"#ifdef {name}\n_Static_assert((long long)({name}) == {value}LL, \"{name} == {value}\");\n#else\n#pragma message \"MISSING {name}\"\n#endif\n");
        }

        // The _IOC field layout that IoctlEncoding hard-codes, and the x86_64 userfaultfd number.
        c.Append(CultureInfo.InvariantCulture, $"_Static_assert(_IOC_NRSHIFT == {IoctlEncoding.NumberShift} && _IOC_TYPESHIFT == {IoctlEncoding.TypeShift} && _IOC_SIZESHIFT == {IoctlEncoding.SizeShift} && _IOC_DIRSHIFT == {IoctlEncoding.DirectionShift}, \"_IOC shifts\");\n");
        c.Append(CultureInfo.InvariantCulture, $"_Static_assert(_IOC_NRBITS == {IoctlEncoding.NumberBits} && _IOC_TYPEBITS == {IoctlEncoding.TypeBits} && _IOC_SIZEBITS == {IoctlEncoding.SizeBits} && _IOC_DIRBITS == {IoctlEncoding.DirectionBits}, \"_IOC widths\");\n");
        c.Append(CultureInfo.InvariantCulture, $"_Static_assert((_IOC_READ << _IOC_DIRSHIFT) == {IoctlEncoding.Read}u && (_IOC_WRITE << _IOC_DIRSHIFT) == {IoctlEncoding.Write}u && (_IOC_NONE << _IOC_DIRSHIFT) == {IoctlEncoding.None}u, \"_IOC directions\");\n");
        c.Append(CultureInfo.InvariantCulture, $"_Static_assert(SYS_userfaultfd == {(global::Interop.SYS_userfaultfd_x64)}, \"SYS_userfaultfd (x86_64)\");\n");
        return c.ToString();
    }

    private static IEnumerable<(string Name, long Value)> CNamedConstants(Type type)
    {
        foreach (FieldInfo field in type.GetFields(BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic))
        {
            if (!field.IsLiteral || !CNamePattern().IsMatch(field.Name))
            {
                continue;
            }

            object? raw = field.GetRawConstantValue();
            if (raw is string or null)
            {
                continue;
            }

            yield return (field.Name, Convert.ToInt64(raw, CultureInfo.InvariantCulture));
        }
    }

    [GeneratedRegex("^[A-Z][A-Z0-9_]*$")]
    private static partial Regex CNamePattern();

    [GeneratedRegex("MISSING ([A-Za-z0-9_]+)")]
    private static partial Regex MissingPattern();
}
