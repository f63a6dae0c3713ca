using System.Runtime.InteropServices;

namespace Vhost.User.Messages;

/// <summary>The IOTLB_MSG payload on both channels (<c>struct vhost_iotlb_msg</c>, C layout, 32 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
public struct VhostUserIotlbMessage
{
    /// <summary>The I/O virtual address.</summary>
    public ulong Iova;

    /// <summary>The size of the range.</summary>
    public ulong Size;

    /// <summary>The front-end user address the range maps to (UPDATE).</summary>
    public ulong UserAddress;

    /// <summary>The permission.</summary>
    public VhostIotlbAccess Permission;

    /// <summary>The message type.</summary>
    public VhostIotlbType Type;

    /// <summary>Syntax check: known type and permission; UPDATE and INVALIDATE carry a non-wrapping, non-empty range.</summary>
    /// <returns><see langword="true"/> when well formed.</returns>
    public readonly bool IsValid()
    {
        if (!Enum.IsDefined(Type) || Permission > VhostIotlbAccess.ReadWrite)
        {
            return false;
        }

        if (Type is VhostIotlbType.Update or VhostIotlbType.Invalidate)
        {
            return Size != 0 && Iova <= ulong.MaxValue - Size + 1 && (Type != VhostIotlbType.Update || UserAddress <= ulong.MaxValue - Size + 1);
        }

        return true;
    }
}
