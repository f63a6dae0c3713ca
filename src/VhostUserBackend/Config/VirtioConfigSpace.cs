using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Vhost.User.Messages;

namespace VhostUserBackend.Config;

/// <summary>
/// A device's virtio config space (the device-specific configuration of the virtio spec, read
/// and written by the driver through GET_CONFIG / SET_CONFIG): the bytes of a layout the device
/// declares, the ranges the driver may write with a callback for each, and a change notification
/// to the driver when the device changes the bytes. Give it to the daemon through
/// <see cref="IVhostUserBackend.ConfigSpace"/>: the daemon then offers
/// <see cref="VhostUserProtocolFeatures.Config"/>, serves the front-end's reads and writes from it
/// with the offset and size checks, and sends CONFIG_CHANGE_MSG on the back-end channel when the
/// device changes it while the driver runs.
/// </summary>
/// <remarks>
/// <para>Reads: the driver reads any range within the vhost-user limits; the bytes past the
/// declared layout read as zero. QEMU reads its own idea of the config length (for virtio-blk,
/// the size of its <c>struct virtio_blk_config</c>, which grows with QEMU versions) and fails the
/// device if the reply is shorter, so a layout shorter than the front-end's must not be refused;
/// the virtio spec makes fields of features the device does not offer meaningless, and zero is
/// what QEMU's own devices return for them.</para>
/// <para>Writes: a write must lie inside the layout and touch at least one writable range
/// (<see cref="AllowWrites"/>); only the bytes inside writable ranges are stored, the others are
/// ignored as a read-only register ignores writes. That is what QEMU needs: its vhost-user-input
/// writes the whole 136-byte config (from its last read, stale) when the driver writes the select
/// byte. A write that touches no writable byte, or reaches past the layout, is refused with a
/// clear error.</para>
/// <para>Changes: <see cref="Set{T}"/>, <see cref="Update{T}(VirtioConfigUpdate{T})"/> and
/// <see cref="Update(int, ReadOnlySpan{byte})"/> may be called from any thread and never block on
/// the front-end: when the bytes changed, the daemon serving the space queues the notification and
/// sends it from a thread of its own (the front-end answers it by reading the config space on the
/// main socket, which the daemon's control thread must be free to serve).</para>
/// <para>Thread-safe.</para>
/// </remarks>
public sealed class VirtioConfigSpace
{
    private readonly Lock _lock = new();
    private readonly byte[] _bytes;
    private readonly List<(int Offset, int Length, VirtioConfigWriteHandler? OnWrite)> _writable = [];
    private bool _inDriverWrite;

    /// <summary>Creates a config space of <paramref name="size"/> zero bytes.</summary>
    /// <param name="size">The layout's length: 1 to 256 bytes (<see cref="VhostUserLimits.MaxConfigSize"/>).</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="size"/> is out of range.</exception>
    public VirtioConfigSpace(int size)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(size);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(size, VhostUserLimits.MaxConfigSize);
        _bytes = new byte[size];
    }

    /// <summary>Raised (outside the lock, on the thread that changed the space) after the device changed the bytes; not for the driver's own writes.</summary>
    internal event Action? Changed;

    /// <summary>The layout's length in bytes.</summary>
    public int Size => _bytes.Length;

    /// <summary>Creates a config space holding <paramref name="initial"/> (its layout's length is the size of <typeparamref name="T"/>).</summary>
    /// <typeparam name="T">The config layout, such as <c>VirtioBlkConfig</c> or <c>VirtioNetConfig</c>.</typeparam>
    /// <param name="initial">The initial contents.</param>
    /// <returns>The config space.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><typeparamref name="T"/> is larger than 256 bytes.</exception>
    public static VirtioConfigSpace Create<T>(in T initial)
        where T : unmanaged
    {
        var space = new VirtioConfigSpace(Unsafe.SizeOf<T>());
        MemoryMarshal.AsBytes(new ReadOnlySpan<T>(in initial)).CopyTo(space._bytes);
        return space;
    }

    /// <summary>
    /// Lets the driver write <paramref name="length"/> bytes at <paramref name="offset"/> (a field
    /// the virtio spec makes writable, such as virtio-blk's <c>writeback</c>); <paramref name="onWrite"/>
    /// is called after each write that touches the range. Declare the ranges before the daemon starts.
    /// </summary>
    /// <param name="offset">The range's offset in the layout.</param>
    /// <param name="length">Its length.</param>
    /// <param name="onWrite">Checks and applies the driver's write, or <see langword="null"/> to just store it.</param>
    /// <returns>This space, to chain declarations.</returns>
    /// <exception cref="ArgumentOutOfRangeException">The range is empty or leaves the layout.</exception>
    public VirtioConfigSpace AllowWrites(int offset, int length, VirtioConfigWriteHandler? onWrite = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(length);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(length, Size - offset);
        lock (_lock)
        {
            _writable.Add((offset, length, onWrite));
        }

        return this;
    }

    /// <summary>Reads the layout as a <typeparamref name="T"/> (from offset 0).</summary>
    /// <typeparam name="T">The config layout; at most <see cref="Size"/> bytes.</typeparam>
    /// <returns>A copy of the contents.</returns>
    public T Get<T>()
        where T : unmanaged
    {
        lock (_lock)
        {
            return MemoryMarshal.Read<T>(_bytes);
        }
    }

    /// <summary>
    /// Reads <paramref name="destination"/>.Length bytes at <paramref name="offset"/> as the driver
    /// sees them: the bytes past the layout read as zero.
    /// </summary>
    /// <param name="offset">The offset.</param>
    /// <param name="destination">Where to copy.</param>
    public void Read(uint offset, Span<byte> destination)
    {
        destination.Clear();
        lock (_lock)
        {
            if (offset < (uint)_bytes.Length)
            {
                ReadOnlySpan<byte> available = _bytes.AsSpan((int)offset);
                available[..Math.Min(available.Length, destination.Length)].CopyTo(destination);
            }
        }
    }

    /// <summary>Replaces the layout's first bytes with <paramref name="value"/>; notifies the driver if they changed.</summary>
    /// <typeparam name="T">The config layout; at most <see cref="Size"/> bytes.</typeparam>
    /// <param name="value">The new contents.</param>
    public void Set<T>(in T value)
        where T : unmanaged
        => Update(0, MemoryMarshal.AsBytes(new ReadOnlySpan<T>(in value)));

    /// <summary>
    /// Changes the layout in place, atomically with respect to the driver's reads and writes, and
    /// notifies the driver if the bytes changed:
    /// <c>space.Update((ref VirtioBlkConfig c) => c.Capacity = sectors)</c>.
    /// </summary>
    /// <typeparam name="T">The config layout; at most <see cref="Size"/> bytes.</typeparam>
    /// <param name="change">The change.</param>
    public void Update<T>(VirtioConfigUpdate<T> change)
        where T : unmanaged
    {
        ArgumentNullException.ThrowIfNull(change);
        CheckFits(Unsafe.SizeOf<T>());
        bool changed;
        lock (_lock)
        {
            T value = MemoryMarshal.Read<T>(_bytes);
            change(ref value);
            changed = Store(0, MemoryMarshal.AsBytes(new ReadOnlySpan<T>(in value)));
        }

        RaiseIfChanged(changed);
    }

    /// <summary>Writes <paramref name="bytes"/> at <paramref name="offset"/>; notifies the driver if they changed.</summary>
    /// <param name="offset">The offset in the layout.</param>
    /// <param name="bytes">The new bytes.</param>
    /// <exception cref="ArgumentOutOfRangeException">The range leaves the layout.</exception>
    public void Update(int offset, ReadOnlySpan<byte> bytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        CheckFits(bytes.Length, offset);
        bool changed;
        lock (_lock)
        {
            changed = Store(offset, bytes);
        }

        RaiseIfChanged(changed);
    }

    /// <summary>
    /// SET_CONFIG: the driver writes <paramref name="data"/> at <paramref name="offset"/>. The
    /// bytes inside writable ranges are stored, then the handler of each range the write touched
    /// runs; a handler that throws undoes the whole write.
    /// </summary>
    /// <exception cref="ArgumentException">The write leaves the layout, touches no writable range, or a handler refused it.</exception>
    internal void WriteFromDriver(uint offset, ReadOnlySpan<byte> data)
    {
        if (data.IsEmpty || offset > (uint)Size || (uint)data.Length > (uint)Size - offset)
        {
            throw new ArgumentException($"config write [{offset}, +{data.Length}) is outside the device's {Size}-byte config space");
        }

        int start = (int)offset;
        int end = start + data.Length;
        lock (_lock)
        {
            Span<byte> before = stackalloc byte[VhostUserLimits.MaxConfigSize];
            before = before[..Size];
            _bytes.CopyTo(before);
            bool touched = false;
            foreach ((int o, int length, _) in _writable)
            {
                int from = Math.Max(o, start);
                int to = Math.Min(o + length, end);
                if (from < to)
                {
                    data[(from - start)..(to - start)].CopyTo(_bytes.AsSpan(from));
                    touched = true;
                }
            }

            if (!touched)
            {
                throw new ArgumentException($"config write [{offset}, +{data.Length}) touches no writable field (writable: {DescribeWritable()})");
            }

            _inDriverWrite = true;
            try
            {
                foreach ((int o, int length, VirtioConfigWriteHandler? onWrite) in _writable)
                {
                    if (onWrite is not null && Math.Max(o, start) < Math.Min(o + length, end))
                    {
                        onWrite(_bytes);
                    }
                }
            }
            catch
            {
                before.CopyTo(_bytes);
                throw;
            }
            finally
            {
                _inDriverWrite = false;
            }
        }
    }

    private string DescribeWritable()
        => _writable.Count == 0 ? "none" : string.Join(", ", _writable.Select(w => $"[{w.Offset}, +{w.Length})"));

    private void CheckFits(int length, int offset = 0)
    {
        if (length > Size - offset)
        {
            throw new ArgumentOutOfRangeException(nameof(length), length, $"[{offset}, +{length}) does not fit the {Size}-byte config space");
        }
    }

    /// <summary>Stores bytes (lock held); whether they differ from what was there.</summary>
    private bool Store(int offset, ReadOnlySpan<byte> bytes)
    {
        Span<byte> target = _bytes.AsSpan(offset, bytes.Length);
        if (target.SequenceEqual(bytes))
        {
            return false;
        }

        bytes.CopyTo(target);

        // A change made by a write handler is the driver's own: it knows.
        return !_inDriverWrite;
    }

    private void RaiseIfChanged(bool changed)
    {
        if (changed)
        {
            Changed?.Invoke();
        }
    }
}
