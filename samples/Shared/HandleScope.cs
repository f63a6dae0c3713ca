using System.Runtime.InteropServices;

namespace VhostSamples;

/// <summary>Holds a reference on a handle for a C library call and exposes its raw fd (the samples' own P/Invokes).</summary>
internal ref struct HandleScope
{
    private readonly SafeHandle _handle;
    private bool _added;

    public HandleScope(SafeHandle handle)
    {
        _handle = handle;
        handle.DangerousAddRef(ref _added);
        Fd = (int)handle.DangerousGetHandle();
    }

    /// <summary>The fd, valid until <see cref="Dispose"/>.</summary>
    public int Fd { get; }

    public void Dispose()
    {
        if (_added)
        {
            _handle.DangerousRelease();
            _added = false;
        }
    }
}
