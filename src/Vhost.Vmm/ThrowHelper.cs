using Vhost;

/// <summary>
/// The Vhost.Vmm assembly's side of the interop layer's errors: the linked src/Common files report
/// errno values, and this turns them into the public <see cref="VhostException"/> (with the errno in <see cref="VhostException.ErrorCode"/>).
/// </summary>
internal static class ThrowHelper
{
    /// <summary>The exception for a failed system call (used by src/Common's <c>ErrnoChecks</c>).</summary>
    internal static VhostException ErrnoException(int errno, string operation, string? detail = null)
        => new(errno, operation, detail);
}
