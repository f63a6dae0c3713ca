namespace Vhost;

/// <summary>Options for creating an <see cref="EventFd"/> (close-on-exec is always set).</summary>
[Flags]
public enum EventFdFlags
{
    /// <summary>A blocking counter eventfd.</summary>
    None = 0,

    /// <summary><c>EFD_NONBLOCK</c>: reads of a zero counter fail with EAGAIN instead of blocking.</summary>
    NonBlocking = 0x800,

    /// <summary><c>EFD_SEMAPHORE</c>: each read returns 1 and decrements the counter by one.</summary>
    Semaphore = 0x1,
}
