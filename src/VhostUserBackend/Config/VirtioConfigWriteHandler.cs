namespace VhostUserBackend.Config;

/// <summary>
/// Called on the daemon's control thread after the driver wrote a writable range of a
/// <see cref="VirtioConfigSpace"/> (SET_CONFIG). <paramref name="config"/> is the whole config space,
/// already holding the driver's bytes: check them (throw <see cref="ArgumentException"/> to refuse the
/// write; the space is then restored and the front-end told), act on them, and change any other
/// byte the driver's write implies (virtio-input recomputes its payload from select/subsel). Such
/// changes are the driver's own doing: no config-change notification is sent for them.
/// </summary>
/// <param name="config">The config space, writable for the duration of the call.</param>
public delegate void VirtioConfigWriteHandler(Span<byte> config);
