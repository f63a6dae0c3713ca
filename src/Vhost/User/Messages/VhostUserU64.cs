using System.Runtime.InteropServices;

namespace Vhost.User.Messages;

/// <summary>A u64 payload: features, acknowledgements, counts, the KICK/CALL/ERR ring word.</summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
internal struct VhostUserU64
{
    /// <summary>The value.</summary>
    public ulong Value;

    /// <summary>Creates the payload.</summary>
    /// <param name="value">The value.</param>
    public VhostUserU64(ulong value) => Value = value;

    /// <summary>Always valid: every u64 is syntactically acceptable.</summary>
    /// <returns><see langword="true"/>.</returns>
    public readonly bool IsValid() => true;
}
