namespace VhostProbe.Devices;

/// <summary>A FUSE reply with a negative errno, or a malformed reply.</summary>
public sealed class FuseException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="error">The reply's error (negative errno), or 0 for a malformed reply.</param>
    /// <param name="message">What failed.</param>
    public FuseException(int error, string message)
        : base(message) => Error = error;

    /// <summary>The reply's error (negative errno), or 0 for a malformed reply.</summary>
    public int Error { get; }
}
