using System.Runtime.InteropServices;
using Vhost;

namespace VhostUserInput;

/// <summary>
/// The few C library calls the sample makes itself (the library's own interop is internal): open,
/// read and write of an evdev node, and its <c>EVIOC*</c> ioctls (linux/input.h).
/// </summary>
internal static unsafe partial class Native
{
    internal const int O_RDONLY = 0;
    internal const int O_RDWR = 2;
    internal const int O_NONBLOCK = 0x800;
    internal const int O_CLOEXEC = 0x80000;

    /// <summary><c>sizeof(struct input_event)</c> on 64-bit Linux: a 16-byte <c>struct timeval</c>, type, code, value.</summary>
    internal const int InputEventSize = 24;

    /// <summary><c>sizeof(struct input_absinfo)</c>: value, minimum, maximum, fuzz, flat, resolution (six s32).</summary>
    internal const int InputAbsInfoSize = 24;

    /// <summary><c>EV_MAX</c>: the highest event type.</summary>
    internal const int EvMax = 0x1f;

    /// <summary><c>ABS_MAX</c>: the highest absolute axis.</summary>
    internal const int AbsMax = 0x3f;

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "read", SetLastError = true)]
    internal static partial nint read(int fd, byte* buffer, nint count);

    [LibraryImport("libc", EntryPoint = "write", SetLastError = true)]
    internal static partial nint write(int fd, byte* buffer, nint count);

    [LibraryImport("libc", EntryPoint = "ioctl", SetLastError = true)]
    internal static partial int ioctl(int fd, nuint request, void* argument);

    [LibraryImport("libc", EntryPoint = "ioctl", SetLastError = true)]
    internal static partial int ioctl(int fd, nuint request, nint argument);

    /// <summary><c>EINTR</c>.</summary>
    internal const int EINTR = 4;

    /// <summary><c>EAGAIN</c>.</summary>
    internal const int EAGAIN = 11;

    /// <summary>The errno of the last call (the libraries carry an errno as a plain <see cref="int"/>, <see cref="Vhost.VhostException.ErrorCode"/>).</summary>
    internal static int LastErrno => Marshal.GetLastPInvokeError();

    /// <summary><c>_IOC(dir, 'E', nr, size)</c>.</summary>
    private static nuint Evioc(uint direction, uint nr, int size) => (nuint)((direction << 30) | ((uint)size << 16) | ((uint)'E' << 8) | nr);

    /// <summary><c>EVIOCGID</c>: the device's <c>struct input_id</c> (8 bytes).</summary>
    internal static nuint EVIOCGID => Evioc(2, 0x02, 8);

    /// <summary><c>EVIOCGNAME(len)</c>: the device name.</summary>
    internal static nuint EVIOCGNAME(int length) => Evioc(2, 0x06, length);

    /// <summary><c>EVIOCGUNIQ(len)</c>: the unique identifier (serial).</summary>
    internal static nuint EVIOCGUNIQ(int length) => Evioc(2, 0x08, length);

    /// <summary><c>EVIOCGPROP(len)</c>: the property bitmap.</summary>
    internal static nuint EVIOCGPROP(int length) => Evioc(2, 0x09, length);

    /// <summary><c>EVIOCGLED(len)</c>: the current LED state bitmap.</summary>
    internal static nuint EVIOCGLED(int length) => Evioc(2, 0x19, length);

    /// <summary><c>EVIOCGBIT(type, len)</c>: the codes of <paramref name="type"/> (type 0: the event types).</summary>
    internal static nuint EVIOCGBIT(int type, int length) => Evioc(2, 0x20 + (uint)type, length);

    /// <summary><c>EVIOCGABS(axis)</c>: an axis's <c>struct input_absinfo</c>.</summary>
    internal static nuint EVIOCGABS(int axis) => Evioc(2, 0x40 + (uint)axis, InputAbsInfoSize);

    /// <summary><c>EVIOCGRAB</c>: grab (1) or release (0) the device.</summary>
    internal static nuint EVIOCGRAB => Evioc(1, 0x90, sizeof(int));
}
