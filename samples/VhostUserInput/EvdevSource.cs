using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Extensions.Logging;
using Microsoft.Win32.SafeHandles;
using Vhost;
using VhostSamples;
using VhostUserBackend.Devices.Input;

namespace VhostUserInput;

/// <summary>
/// A host evdev (<c>/dev/input/eventN</c>) passed through: the config space is what the device's
/// ioctls say (EVIOCGNAME, EVIOCGUNIQ, EVIOCGID, EVIOCGPROP, EVIOCGBIT per type, EVIOCGABS per
/// axis, as QEMU's <c>input-linux</c>/<c>virtio-input-host</c> and rust-vmm's
/// <c>vhost-device-input</c> do), its events go to the driver, and the driver's status events
/// (LEDs, sounds) are written back to it. Opened read-write and non-blocking; with
/// <c>grab</c> (EVIOCGRAB) no one else on the host gets its events while we have it.
/// </summary>
internal sealed unsafe class EvdevSource : IInputSource, IDisposable
{
    private const int BitmapBytes = VirtioInputConfig.PayloadLength;
    private const int EventsPerRead = 64;
    private readonly SafeFileHandle _fd;
    private readonly ILogger? _logger;
    private readonly byte[] _readBuffer = new byte[EventsPerRead * Native.InputEventSize];

    /// <summary>Opens <paramref name="path"/> and reads its description.</summary>
    /// <exception cref="VhostException">The device cannot be opened, is not an evdev (EVIOCGBIT fails) or cannot be grabbed.</exception>
    public EvdevSource(string path, bool grab, ILogger? logger = null)
    {
        Path = path;
        _logger = logger;
        int fd = Native.open(path, Native.O_RDWR | Native.O_NONBLOCK | Native.O_CLOEXEC);
        if (fd < 0)
        {
            throw new VhostException(Native.LastErrno, "open", path);
        }

        _fd = new SafeFileHandle(fd, ownsHandle: true);
        try
        {
            Config = Describe();
            if (grab)
            {
                Ioctl(Native.EVIOCGRAB, 1, "EVIOCGRAB");
            }
        }
        catch
        {
            _fd.Dispose();
            throw;
        }
    }

    /// <summary>The device node.</summary>
    public string Path { get; }

    /// <inheritdoc/>
    public InputDeviceConfig Config { get; }

    /// <inheritdoc/>
    public SafeHandle ReadyHandle => _fd;

    /// <inheritdoc/>
    /// <exception cref="IOException">The device is gone (ENODEV: unplugged) or read failed otherwise.</exception>
    public int ReadEvents(Span<VirtioInputEvent> events)
    {
        int max = Math.Min(events.Length, EventsPerRead);
        if (max == 0)
        {
            return 0;
        }

        nint n;
        using (var scope = new HandleScope(_fd))
        {
            fixed (byte* p = _readBuffer)
            {
                n = Native.read(scope.Fd, p, max * Native.InputEventSize);
            }
        }

        if (n < 0)
        {
            int errno = Native.LastErrno;
            if (errno is Native.EAGAIN or Native.EINTR)
            {
                return 0;
            }

            throw new IOException($"{Path}: read: {new VhostException(errno, "read").Message}");
        }

        int count = (int)n / Native.InputEventSize;
        for (int i = 0; i < count; i++)
        {
            ReadOnlySpan<byte> raw = _readBuffer.AsSpan(i * Native.InputEventSize, Native.InputEventSize);
            events[i] = new VirtioInputEvent(
                (VirtioInputEventType)BinaryPrimitives.ReadUInt16LittleEndian(raw[16..]),
                BinaryPrimitives.ReadUInt16LittleEndian(raw[18..]),
                BinaryPrimitives.ReadUInt32LittleEndian(raw[20..]));
        }

        return count;
    }

    /// <inheritdoc/>
    public void WriteStatus(in VirtioInputEvent status)
    {
        // struct input_event with a zero timestamp (the kernel stamps injected events itself).
        byte* raw = stackalloc byte[Native.InputEventSize];
        new Span<byte>(raw, 16).Clear();
        *(ushort*)(raw + 16) = (ushort)status.Type;
        *(ushort*)(raw + 18) = status.Code;
        *(uint*)(raw + 20) = status.Value;
        nint n;
        using (var scope = new HandleScope(_fd))
        {
            n = Native.write(scope.Fd, raw, Native.InputEventSize);
        }

        if (n != Native.InputEventSize)
        {
            _logger?.LogWarning("{Path}: status event type {Type} code {Code} not written: {Reason}", Path, status.Type, status.Code, n < 0 ? new VhostException(Native.LastErrno, "write").Message : "short write");
        }
        else if (status.Type == VirtioInputEventType.Led)
        {
            _logger?.LogInformation("{Path}: LED {Code} {State}", Path, status.Code, status.Value != 0 ? "on" : "off");
        }
    }

    /// <summary>The device's LED state now (EVIOCGLED), bit <c>LED_*</c> per LED that is on.</summary>
    public int ReadLedState()
    {
        int leds = 0;
        Ioctl(Native.EVIOCGLED(sizeof(int)), (nint)(&leds), "EVIOCGLED");
        return leds;
    }

    public void Dispose() => _fd.Dispose();

    private InputDeviceConfig Describe()
    {
        byte* buffer = stackalloc byte[BitmapBytes];
        int* info = stackalloc int[6];
        var ids = default(VirtioInputDevIds);
        Ioctl(Native.EVIOCGID, (nint)(&ids), "EVIOCGID");
        var config = new InputDeviceConfig
        {
            Name = ReadString(Native.EVIOCGNAME(BitmapBytes), buffer) ?? string.Empty,
            Serial = ReadString(Native.EVIOCGUNIQ(BitmapBytes), buffer) ?? string.Empty,
            Ids = ids,
            Properties = ReadBitmap(Native.EVIOCGPROP(BitmapBytes), buffer) ?? [],
        };

        ushort[] types = ReadBitmap(Native.EVIOCGBIT(0, BitmapBytes), buffer)
            ?? throw new VhostException(Native.LastErrno, "EVIOCGBIT", $"{Path} is not an evdev device");
        foreach (ushort type in types)
        {
            // EV_SYN is implied; EV_REP has no code bitmap (EVIOCGBIT fails for it).
            if (type == 0 || type > Native.EvMax || ReadBitmap(Native.EVIOCGBIT(type, BitmapBytes), buffer) is not { Length: > 0 } codes)
            {
                continue;
            }

            config.EventCodes[(VirtioInputEventType)type] = codes;
            if (type == (ushort)VirtioInputEventType.Absolute)
            {
                foreach (ushort axis in codes.Where(a => a <= Native.AbsMax))
                {
                    Ioctl(Native.EVIOCGABS(axis), (nint)info, "EVIOCGABS");
                    config.AbsoluteAxes[(byte)axis] = new VirtioInputAbsInfo
                    {
                        Min = (uint)info[1],
                        Max = (uint)info[2],
                        Fuzz = (uint)info[3],
                        Flat = (uint)info[4],
                        Resolution = (uint)info[5],
                    };
                }
            }
        }

        return config;
    }

    /// <summary>A string ioctl (NUL-terminated, at most 128 bytes); null when the device has none (ENOENT).</summary>
    private string? ReadString(nuint request, byte* buffer)
    {
        new Span<byte>(buffer, BitmapBytes).Clear();
        int n = IoctlOrFail(request, buffer);
        if (n < 0)
        {
            return null;
        }

        var bytes = new ReadOnlySpan<byte>(buffer, Math.Min(n, BitmapBytes));
        int end = bytes.IndexOf((byte)0);
        return Encoding.UTF8.GetString(end >= 0 ? bytes[..end] : bytes);
    }

    /// <summary>A bitmap ioctl, as the codes set in it; null when the ioctl failed.</summary>
    private ushort[]? ReadBitmap(nuint request, byte* buffer)
    {
        new Span<byte>(buffer, BitmapBytes).Clear();
        int n = IoctlOrFail(request, buffer);
        return n < 0 ? null : InputDeviceConfig.CodesOf(new ReadOnlySpan<byte>(buffer, Math.Min(n, BitmapBytes)));
    }

    private int IoctlOrFail(nuint request, void* argument)
    {
        using var scope = new HandleScope(_fd);
        return Native.ioctl(scope.Fd, request, argument);
    }

    private void Ioctl(nuint request, nint argument, string name)
    {
        int rc;
        using (var scope = new HandleScope(_fd))
        {
            rc = Native.ioctl(scope.Fd, request, argument);
        }

        if (rc < 0)
        {
            throw new VhostException(Native.LastErrno, name, Path);
        }
    }
}
