using System.Runtime.InteropServices;

internal static partial class Interop
{
    /// <summary>
    /// <c>unsetenv(3)</c>: removes a variable from the process's native environment (what a child
    /// started by native code inherits; .NET's own copy is changed through
    /// <see cref="System.Environment.SetEnvironmentVariable(string, string)"/>).
    /// </summary>
    [LibraryImport(Libc, EntryPoint = "unsetenv", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    internal static partial int unsetenv(string name);
}
