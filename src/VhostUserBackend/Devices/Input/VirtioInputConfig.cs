using System.Diagnostics.CodeAnalysis;
using System.Runtime.InteropServices;

namespace VhostUserBackend.Devices.Input;

/// <summary>
/// The virtio-input configuration space (<c>struct virtio_input_config</c>, VIRTIO 1.3 §5.8.4):
/// 136 bytes. The driver writes <see cref="Select"/> and <see cref="Subsel"/> (SET_CONFIG at
/// offsets 0 and 1); the device answers in <see cref="PayloadSize"/> and the 128-byte
/// <see cref="Payload"/> union (a string, a bitmap, a <see cref="VirtioInputAbsInfo"/> or a
/// <see cref="VirtioInputDevIds"/>), or with size 0 when it has nothing for that selection.
/// </summary>
/// <remarks>A device keeps one, refills it when the selection changes (<see cref="Clear"/>, then a <c>Set</c> method) and serves its bytes (<c>MemoryMarshal.AsBytes</c>) from <see cref="IVhostUserBackend.GetConfig"/>.</remarks>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
public unsafe struct VirtioInputConfig
{
    /// <summary>The size in bytes.</summary>
    public const int Size = 136;

    /// <summary>Offset of <see cref="Select"/>.</summary>
    public const int SelectOffset = 0;

    /// <summary>Offset of <see cref="Subsel"/>.</summary>
    public const int SubselOffset = 1;

    /// <summary>Offset of the <see cref="Payload"/> union.</summary>
    public const int PayloadOffset = 8;

    /// <summary>The length of the <see cref="Payload"/> union.</summary>
    public const int PayloadLength = 128;

    /// <summary>What the driver selected (<c>select</c>, offset 0).</summary>
    public VirtioInputConfigSelect Select;

    /// <summary>The sub-selection: an event type, an axis (<c>subsel</c>, offset 1).</summary>
    public byte Subsel;

    /// <summary>The bytes of <see cref="Payload"/> that answer the selection; 0 when the device has none (<c>size</c>, offset 2).</summary>
    public byte PayloadSize;

#pragma warning disable CS0169 // reserved[5]: keeps the union at offset 8.
    private byte _reserved0;
    private uint _reserved1;
#pragma warning restore CS0169

    private fixed byte _payload[PayloadLength];

    /// <summary>The 128-byte union (<c>u</c>, offset 8).</summary>
    [UnscopedRef]
    public Span<byte> Payload => MemoryMarshal.CreateSpan(ref _payload[0], PayloadLength);

    /// <summary>Answers "nothing here": <see cref="PayloadSize"/> 0 and a zeroed payload (the selection is kept).</summary>
    public void Clear()
    {
        PayloadSize = 0;
        Payload.Clear();
    }

    /// <summary>Answers with a string (<see cref="VirtioInputConfigSelect.IdName"/>, <see cref="VirtioInputConfigSelect.IdSerial"/>), not NUL-terminated.</summary>
    /// <param name="text">The bytes (ASCII or UTF-8), at most <see cref="PayloadLength"/>.</param>
    /// <exception cref="ArgumentException">The text is longer than <see cref="PayloadLength"/> bytes.</exception>
    public void SetString(ReadOnlySpan<byte> text)
    {
        if (text.Length > PayloadLength)
        {
            throw new ArgumentException($"a virtio-input config string is at most {PayloadLength} bytes, not {text.Length}", nameof(text));
        }

        Clear();
        text.CopyTo(Payload);
        PayloadSize = (byte)text.Length;
    }

    /// <summary>
    /// Answers with a bitmap (<see cref="VirtioInputConfigSelect.EventBits"/>,
    /// <see cref="VirtioInputConfigSelect.PropertyBits"/>) with bit <c>code</c> set for each of
    /// <paramref name="codes"/>; the size is the bytes up to the highest set bit (0 for none).
    /// </summary>
    /// <param name="codes">The codes (event types for <c>subsel</c> 0, key codes for EV_KEY...), each below 1024.</param>
    /// <exception cref="ArgumentOutOfRangeException">A code of 1024 or more, which the 128-byte bitmap cannot hold.</exception>
    public void SetBitmap(ReadOnlySpan<ushort> codes)
    {
        Clear();
        Span<byte> bitmap = Payload;
        int size = 0;
        foreach (ushort code in codes)
        {
            if (code >= PayloadLength * 8)
            {
                Clear();
                throw new ArgumentOutOfRangeException(nameof(codes), code, $"a virtio-input bitmap holds codes below {PayloadLength * 8}");
            }

            bitmap[code >> 3] |= (byte)(1 << (code & 7));
            size = Math.Max(size, (code >> 3) + 1);
        }

        PayloadSize = (byte)size;
    }

    /// <summary>Answers <see cref="VirtioInputConfigSelect.AbsInfo"/> with an axis's range.</summary>
    /// <param name="info">The range.</param>
    public void SetAbsInfo(in VirtioInputAbsInfo info)
    {
        Clear();
        MemoryMarshal.Write(Payload, in info);
        PayloadSize = VirtioInputAbsInfo.Size;
    }

    /// <summary>Answers <see cref="VirtioInputConfigSelect.IdDevIds"/> with the device ids.</summary>
    /// <param name="ids">The ids.</param>
    public void SetDevIds(in VirtioInputDevIds ids)
    {
        Clear();
        MemoryMarshal.Write(Payload, in ids);
        PayloadSize = VirtioInputDevIds.Size;
    }
}
