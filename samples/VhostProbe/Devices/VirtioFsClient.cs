using System.Buffers.Binary;
using System.Text;
using Vhost.Vmm;
using VhostUserBackend.Virtio;

namespace VhostProbe.Devices;

/// <summary>
/// Sends FUSE requests on a virtio-fs request queue (queue 1; queue 0 is hiprio) through a
/// <see cref="VmmDevice"/>: one device-readable buffer (fuse_in_header + arguments), one
/// device-writable buffer (fuse_out_header + reply).
/// </summary>
public sealed class VirtioFsClient
{
    /// <summary>FUSE_KERNEL_VERSION.</summary>
    public const uint KernelVersion = 7;

    /// <summary>The minor version the probe speaks (16-byte fuse_init_in).</summary>
    public const uint KernelMinorVersion = 31;

    /// <summary>The root's node id.</summary>
    public const ulong RootNodeId = 1;

    private const int InHeaderSize = 40;
    private const int OutHeaderSize = 16;
    private const int BufferSize = 4096;

    private readonly VmmDevice _device;
    private readonly VmmQueue _queue;
    private readonly ulong _in;
    private readonly ulong _out;
    private ulong _unique;

    /// <summary>Uses queue 1 of <paramref name="device"/> as the request queue.</summary>
    /// <param name="device">A started virtio-fs device with at least 2 queues.</param>
    public VirtioFsClient(VmmDevice device)
    {
        ArgumentNullException.ThrowIfNull(device);
        if (device.Queues.Count < 2)
        {
            throw new ArgumentException("virtio-fs needs the hiprio queue and a request queue", nameof(device));
        }

        _device = device;
        _queue = device.Queues[1];
        _in = device.Ram.Allocate(BufferSize, 64);
        _out = device.Ram.Allocate(BufferSize, 64);
    }

    /// <summary>How long a request may take. Default 5 s.</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>FUSE_INIT.</summary>
    /// <param name="major">The daemon's major version.</param>
    /// <param name="minor">The daemon's minor version.</param>
    /// <param name="maxWrite">The daemon's max_write.</param>
    public void Init(out uint major, out uint minor, out uint maxWrite)
    {
        Span<byte> arg = stackalloc byte[16];
        BinaryPrimitives.WriteUInt32LittleEndian(arg, KernelVersion);
        BinaryPrimitives.WriteUInt32LittleEndian(arg[4..], KernelMinorVersion);
        BinaryPrimitives.WriteUInt32LittleEndian(arg[8..], 128 << 10);
        BinaryPrimitives.WriteUInt32LittleEndian(arg[12..], 0);
        ReadOnlySpan<byte> r = Call(FuseOpcode.Init, 0, arg, 24);
        major = BinaryPrimitives.ReadUInt32LittleEndian(r);
        minor = BinaryPrimitives.ReadUInt32LittleEndian(r[4..]);
        maxWrite = BinaryPrimitives.ReadUInt32LittleEndian(r[20..]);
    }

    /// <summary>FUSE_LOOKUP of <paramref name="name"/> in directory <paramref name="parent"/>.</summary>
    /// <param name="parent">The directory's node id.</param>
    /// <param name="name">The entry name.</param>
    /// <param name="nodeId">The entry's node id.</param>
    /// <returns>Its attributes.</returns>
    public FuseAttr Lookup(ulong parent, string name, out ulong nodeId)
    {
        byte[] arg = Encoding.UTF8.GetBytes(name + "\0");
        ReadOnlySpan<byte> r = Call(FuseOpcode.Lookup, parent, arg, 40 + 88);
        nodeId = BinaryPrimitives.ReadUInt64LittleEndian(r);
        return ParseAttr(r[40..]);
    }

    /// <summary>FUSE_GETATTR of <paramref name="nodeId"/>.</summary>
    /// <param name="nodeId">The node.</param>
    /// <returns>Its attributes.</returns>
    public FuseAttr GetAttr(ulong nodeId)
    {
        Span<byte> arg = stackalloc byte[16];
        arg.Clear();
        ReadOnlySpan<byte> r = Call(FuseOpcode.GetAttr, nodeId, arg, 16 + 88);
        return ParseAttr(r[16..]);
    }

    private static FuseAttr ParseAttr(ReadOnlySpan<byte> a) => new(
        BinaryPrimitives.ReadUInt64LittleEndian(a),
        BinaryPrimitives.ReadUInt64LittleEndian(a[8..]),
        BinaryPrimitives.ReadUInt32LittleEndian(a[60..]),
        BinaryPrimitives.ReadUInt32LittleEndian(a[64..]),
        BinaryPrimitives.ReadUInt32LittleEndian(a[68..]),
        BinaryPrimitives.ReadUInt32LittleEndian(a[72..]));

    private ReadOnlySpan<byte> Call(FuseOpcode opcode, ulong nodeId, ReadOnlySpan<byte> arg, int minReply)
    {
        int len = InHeaderSize + arg.Length;
        Span<byte> h = _device.Ram.GetSpan(_in, len);
        ulong unique = ++_unique;
        BinaryPrimitives.WriteUInt32LittleEndian(h, (uint)len);
        BinaryPrimitives.WriteUInt32LittleEndian(h[4..], (uint)opcode);
        BinaryPrimitives.WriteUInt64LittleEndian(h[8..], unique);
        BinaryPrimitives.WriteUInt64LittleEndian(h[16..], nodeId);
        BinaryPrimitives.WriteUInt32LittleEndian(h[24..], 0);
        BinaryPrimitives.WriteUInt32LittleEndian(h[28..], 0);
        BinaryPrimitives.WriteUInt32LittleEndian(h[32..], (uint)Environment.ProcessId);
        BinaryPrimitives.WriteUInt32LittleEndian(h[36..], 0);
        arg.CopyTo(h[InHeaderSize..]);
        _device.Ram.GetSpan(_out, BufferSize).Clear();
        ushort head = _queue.Submit([new VirtqBuffer(_in, (uint)len, false), new VirtqBuffer(_out, BufferSize, true)]);
        VmmCompletion c = _queue.WaitForCompletion(head, Timeout);
        ReadOnlySpan<byte> o = _device.Ram.GetSpan(_out, BufferSize);
        uint outLen = BinaryPrimitives.ReadUInt32LittleEndian(o);
        int error = BinaryPrimitives.ReadInt32LittleEndian(o[4..]);
        ulong gotUnique = BinaryPrimitives.ReadUInt64LittleEndian(o[8..]);
        if (gotUnique != unique || outLen < OutHeaderSize || outLen > BufferSize || c.Length < OutHeaderSize)
        {
            throw new FuseException(0, $"{opcode}: malformed reply (len {outLen}, used length {c.Length}, unique {gotUnique} for {unique})");
        }

        if (error != 0)
        {
            throw new FuseException(error, $"{opcode}: the daemon replied errno {-error}");
        }

        if (outLen - OutHeaderSize < minReply)
        {
            throw new FuseException(0, $"{opcode}: reply of {outLen - OutHeaderSize} bytes, expected at least {minReply}");
        }

        return o.Slice(OutHeaderSize, (int)outLen - OutHeaderSize);
    }
}
