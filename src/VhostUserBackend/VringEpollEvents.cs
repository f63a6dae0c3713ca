namespace VhostUserBackend;

/// <summary>The epoll events that fired for a worker event (the <c>EPOLL*</c> bits).</summary>
[Flags]
public enum VringEpollEvents : uint
{
    /// <summary>No event.</summary>
    None = 0,

    /// <summary>EPOLLIN: readable.</summary>
    In = 0x001,

    /// <summary>EPOLLPRI: urgent data.</summary>
    Priority = 0x002,

    /// <summary>EPOLLOUT: writable.</summary>
    Out = 0x004,

    /// <summary>EPOLLERR: an error condition.</summary>
    Error = 0x008,

    /// <summary>EPOLLHUP: hang-up.</summary>
    HangUp = 0x010,

    /// <summary>EPOLLRDHUP: the peer shut down writing.</summary>
    ReadHangUp = 0x2000,

    /// <summary>EPOLLET: edge-triggered registration (only valid when registering).</summary>
    EdgeTriggered = 0x80000000,
}
