namespace Vhost.GuestHarness;

/// <summary>
/// The test guest cannot be had on this machine: QEMU, the guest kernel or a tool is missing and
/// could not be installed or downloaded (for example apt refused). Tests turn this into a skip
/// with <see cref="Exception.Message"/> as the reason (<see cref="GuestImage.GetOrSkipAsync"/>).
/// </summary>
public sealed class GuestUnavailableException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="message">Why the guest cannot be had, exactly (the failing command and its error).</param>
    public GuestUnavailableException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a cause.</summary>
    /// <param name="message">Why the guest cannot be had.</param>
    /// <param name="innerException">The underlying failure.</param>
    public GuestUnavailableException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
