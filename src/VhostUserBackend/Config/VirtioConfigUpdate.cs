namespace VhostUserBackend.Config;

/// <summary>Changes a typed view of a <see cref="VirtioConfigSpace"/> in place (see <see cref="VirtioConfigSpace.Update{T}(VirtioConfigUpdate{T})"/>).</summary>
/// <typeparam name="T">The config layout.</typeparam>
/// <param name="config">The layout, read from the space; the changes are written back.</param>
public delegate void VirtioConfigUpdate<T>(ref T config)
    where T : unmanaged;
