using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.RegularExpressions;

namespace Vhost.TestSupport;

/// <summary>Which set of C headers declares a struct (they cannot all share one translation unit).</summary>
internal enum CHeaderSet
{
    /// <summary>No C declaration can be checked on this machine (another architecture's layout, or newer headers).</summary>
    None,

    /// <summary>glibc's userspace headers (<see cref="CHeaders.LibcIncludes"/>).</summary>
    Libc,

    /// <summary>The kernel UAPI headers of x86_64 (<c>&lt;asm/stat.h&gt;</c>, <c>&lt;linux/eventpoll.h&gt;</c>, ...).</summary>
    KernelX64,

    /// <summary><c>&lt;asm-generic/stat.h&gt;</c>: the generic 64-bit layout that aarch64 uses.</summary>
    AsmGeneric64,
}

/// <summary>
/// One field of an interop struct: its C# name, offset and size, and its C name when it differs
/// (a C name is checked for its offset only; an empty C name is not checked in C at all: a field
/// the headers name differently across versions, covered by the struct's size).
/// </summary>
internal sealed record FieldRow(string Name, int Offset, int Size, string? CName = null);

/// <summary>The expected layout of one interop struct, from the x86_64 (LP64) ABI.</summary>
internal sealed record LayoutRow(Type Type, int Size, string? CType, CHeaderSet Headers, params FieldRow[] Fields);

/// <summary>
/// The C-ABI checks shared by the test projects of each library that compiles interop: every
/// struct of a layout table against its C# declaration (<see cref="AssertLayout"/>), every nested
/// struct of an <c>Interop</c> class covered by a row (<see cref="StructsWithoutRow"/>), and the
/// table and the C-named constants turned into C <c>_Static_assert</c>s compiled against this
/// machine's headers (<see cref="StructAsserts"/>, <see cref="ConstantAsserts"/>, <see cref="Compile"/>).
/// </summary>
internal static partial class CHeaders
{
    /// <summary>The glibc and kernel headers every libc translation unit includes.</summary>
    public const string LibcIncludes = """
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
        #include <sys/uio.h>
        #include <unistd.h>
        #include <sys/un.h>
        #include <linux/falloc.h>
        #include <linux/io_uring.h>
        #include <linux/magic.h>
        #include <linux/userfaultfd.h>
        #include <linux/vhost.h>

        """;

    /// <summary>The kernel UAPI headers of the <see cref="CHeaderSet.KernelX64"/> unit.</summary>
    public const string KernelX64Includes = "#include <linux/types.h>\n#include <asm/stat.h>\n#include <asm/statfs.h>\n#include <linux/eventpoll.h>\n";

    /// <summary>The header of the <see cref="CHeaderSet.AsmGeneric64"/> unit.</summary>
    public const string AsmGeneric64Includes = "#include <asm-generic/stat.h>\n";

    /// <summary>Asserts that a C# struct has exactly the row's size, fields, offsets and field sizes.</summary>
    public static void AssertLayout(LayoutRow row)
    {
        string name = row.Type.Name;
        Assert.Equal(row.Size, SizeOf(row.Type));

        // The row names every field: a field added to the struct without a row fails here.
        string[] actualFields = FieldsOf(row.Type).Select(f => f.Name).Order(StringComparer.Ordinal).ToArray();
        string[] expectedFields = row.Fields.Select(f => f.Name).Order(StringComparer.Ordinal).ToArray();
        Assert.Equal(expectedFields, actualFields);

        foreach (FieldRow field in row.Fields)
        {
            Assert.True(field.Offset == (int)Marshal.OffsetOf(row.Type, field.Name), $"{name}.{field.Name}: offset {Marshal.OffsetOf(row.Type, field.Name)}, expected {field.Offset}");
            int size = SizeOf(row.Type.GetField(field.Name, BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic)!.FieldType);
            Assert.True(field.Size == size, $"{name}.{field.Name}: size {size}, expected {field.Size}");
        }

        // Only alignment padding may follow the last field (msghdr has 4 bytes of it).
        FieldRow last = row.Fields.MaxBy(f => f.Offset + f.Size)!;
        Assert.InRange(row.Size - (last.Offset + last.Size), 0, 7);
    }

    /// <summary>The names of the structs nested in <paramref name="interop"/> that have no row and no exemption.</summary>
    public static string[] StructsWithoutRow(Type interop, IEnumerable<LayoutRow> rows, IReadOnlyDictionary<Type, string> exempt)
    {
        Type[] structs = interop
            .GetNestedTypes(BindingFlags.Public | BindingFlags.NonPublic)
            .Where(t => t.IsValueType && !t.IsEnum && !t.IsDefined(typeof(CompilerGeneratedAttribute), false))
            .ToArray();
        Assert.NotEmpty(structs);
        var covered = rows.Select(r => r.Type).ToHashSet();
        return structs.Where(t => !covered.Contains(t) && !exempt.ContainsKey(t)).Select(t => t.Name).ToArray();
    }

    /// <summary>C <c>_Static_assert</c>s of the size and field offsets (and field sizes) of every row declared by <paramref name="headers"/>.</summary>
    public static string StructAsserts(IEnumerable<LayoutRow> rows, CHeaderSet headers)
    {
        var c = new StringBuilder();
        foreach (LayoutRow row in rows.Where(r => r.Headers == headers))
        {
            Assert.NotNull(row.CType);
            c.Append(CultureInfo.InvariantCulture, $"_Static_assert(sizeof({row.CType}) == {row.Size}, \"sizeof({row.CType}) == {row.Size} ({row.Type.Name})\");\n");
            foreach (FieldRow field in row.Fields)
            {
                if (field.CName is "")
                {
                    continue;
                }

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

    /// <summary>
    /// A C <c>_Static_assert</c> per constant where the headers define its name, and a
    /// <c>#pragma message "MISSING name"</c> where they do not (read back with <see cref="MissingNames"/>).
    /// </summary>
    public static string ConstantAsserts(IEnumerable<(string Name, long Value)> constants)
    {
        var c = new StringBuilder();
        foreach ((string name, long value) in constants)
        {
            c.Append(CultureInfo.InvariantCulture, $"#ifdef {name}\n_Static_assert((long long)({name}) == {value}LL, \"{name} == {value}\");\n#else\n#pragma message \"MISSING {name}\"\n#endif\n");
        }

        return c.ToString();
    }

    /// <summary>
    /// A C <c>_Static_assert</c> per constant that the headers must declare: C enumerators
    /// (<c>IORING_OP_READV</c>) are not macros, so <c>#ifdef</c> cannot test them; a missing one
    /// is a compile error.
    /// </summary>
    public static string EnumeratorAsserts(IEnumerable<(string Name, long Value)> constants)
    {
        var c = new StringBuilder();
        foreach ((string name, long value) in constants)
        {
            c.Append(CultureInfo.InvariantCulture, $"_Static_assert((long long)({name}) == {value}LL, \"{name} == {value}\");\n");
        }

        return c.ToString();
    }

    /// <summary>Every literal field of <paramref name="type"/> named like a C macro (<c>EPOLLIN</c>, <c>MAP_SHARED</c>), with its value.</summary>
    public static IEnumerable<(string Name, long Value)> CNamedConstants(Type type)
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

    /// <summary>Every value of the C-named enums of <typeparamref name="TEnum"/> (zero flags left out).</summary>
    public static IEnumerable<(string Name, long Value)> EnumConstants<TEnum>()
        where TEnum : struct, Enum
        => Enum.GetValues<TEnum>()
            .Select(v => (Name: v.ToString(), Value: Convert.ToInt64(v, CultureInfo.InvariantCulture)))
            .Where(v => v.Value != 0 || !typeof(TEnum).IsDefined(typeof(FlagsAttribute), false));

    /// <summary>The constant names a compilation reported as not defined by the headers.</summary>
    public static string[] MissingNames(string compilerOutput)
        => MissingPattern().Matches(compilerOutput).Select(m => m.Groups[1].Value).Distinct().ToArray();

    /// <summary>The C compiler on PATH; skips the test (naming how to get one) when there is none.</summary>
    public static string CompilerOrSkip()
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

        Assert.Skip("no C compiler (cc, gcc or clang) on PATH; ./test.sh installs gcc");
        return null!;
    }

    /// <summary>Compiles C files with <c>-fsyntax-only</c>; returns the exit code and everything the compiler printed.</summary>
    public static (int Exit, string Output) Compile(string compiler, params string[] files)
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

    /// <summary>
    /// Writes the libc, kernel and generic units of a layout table plus <paramref name="constants"/>
    /// (and any <paramref name="extraLibc"/> asserts), compiles them, and fails naming the broken
    /// check. Returns the constant names the headers do not define (unchecked).
    /// </summary>
    public static string[] CompileChecks(IReadOnlyList<LayoutRow> rows, IEnumerable<(string Name, long Value)> constants, string extraLibc, Action<string> log)
    {
        string compiler = CompilerOrSkip();
        DirectoryInfo dir = Directory.CreateTempSubdirectory("vhost-cabi-");
        string libc = Path.Combine(dir.FullName, "libc.c");
        string kernel = Path.Combine(dir.FullName, "kernel.c");
        string generic = Path.Combine(dir.FullName, "generic.c");
        File.WriteAllText(libc, LibcIncludes + StructAsserts(rows, CHeaderSet.Libc) + ConstantAsserts(constants) + extraLibc);
        File.WriteAllText(kernel, "#include <stddef.h>\n" + KernelX64Includes + StructAsserts(rows, CHeaderSet.KernelX64));
        File.WriteAllText(generic, "#include <stddef.h>\n" + AsmGeneric64Includes + StructAsserts(rows, CHeaderSet.AsmGeneric64));

        (int exit, string text) = Compile(compiler, libc, kernel, generic);
        log(text);
        Assert.True(exit == 0, $"{compiler} rejected the ABI checks (files kept in {dir.FullName}):\n{text}");
        dir.Delete(recursive: true); // kept for inspection when a check fails
        return MissingNames(text);
    }

    /// <summary>The managed size of a value type (<c>sizeof(T)</c>), pointers included.</summary>
    public static int SizeOf(Type type)
    {
        if (type.IsPointer)
        {
            return IntPtr.Size;
        }

        MethodInfo sizeOf = typeof(Unsafe).GetMethod(nameof(Unsafe.SizeOf))!.MakeGenericMethod(type);
        return (int)sizeOf.Invoke(null, null)!;
    }

    /// <summary>The instance fields of an interop struct.</summary>
    public static FieldInfo[] FieldsOf(Type type)
        => type.GetFields(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic);

    [GeneratedRegex("^[A-Z][A-Z0-9_]*$")]
    private static partial Regex CNamePattern();

    [GeneratedRegex("MISSING ([A-Za-z0-9_]+)")]
    private static partial Regex MissingPattern();
}
