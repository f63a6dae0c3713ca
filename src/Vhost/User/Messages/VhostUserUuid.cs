using System.Runtime.CompilerServices;

namespace Vhost.User.Messages;

/// <summary>A 16-byte UUID exactly as it travels on the wire (RFC 4122 byte order).</summary>
[InlineArray(16)]
internal struct VhostUserUuid
{
    private byte _element0;

    /// <summary>Converts from a <see cref="Guid"/> (written big-endian, the RFC 4122 order).</summary>
    /// <param name="value">The UUID.</param>
    /// <returns>The wire form.</returns>
    public static VhostUserUuid FromGuid(Guid value)
    {
        VhostUserUuid result = default;
        value.TryWriteBytes(result, bigEndian: true, out _);
        return result;
    }

    /// <summary>Converts to a <see cref="Guid"/>.</summary>
    /// <returns>The UUID.</returns>
    public readonly Guid ToGuid() => new(this, bigEndian: true);

    /// <inheritdoc/>
    public override readonly string ToString() => ToGuid().ToString();
}
