using System.Runtime.InteropServices;

namespace Vhost.User.Messages;

/// <summary>The shared-object payload (GET_SHARED_OBJECT, SHARED_OBJECT_ADD/REMOVE/LOOKUP): one UUID, 16 bytes.</summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
internal struct VhostUserSharedObject
{
    /// <summary>The object's UUID.</summary>
    public VhostUserUuid Uuid;

    /// <summary>Creates the payload.</summary>
    /// <param name="uuid">The UUID.</param>
    public VhostUserSharedObject(Guid uuid) => Uuid = VhostUserUuid.FromGuid(uuid);

    /// <summary>Syntax check: neither the nil UUID nor the max UUID (all ones).</summary>
    /// <returns><see langword="true"/> when well formed.</returns>
    public readonly bool IsValid()
    {
        ReadOnlySpan<byte> bytes = Uuid;
        return bytes.IndexOfAnyExcept((byte)0) >= 0 && bytes.IndexOfAnyExcept((byte)0xFF) >= 0;
    }
}
