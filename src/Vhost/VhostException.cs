namespace Vhost;

/// <summary>
/// The error thrown by every vhost frontend and by the Linux interop underneath it: a failed
/// system call or ioctl (with its <see cref="Errno"/>), or a device that refused an operation.
/// </summary>
/// <remarks>
/// Argument errors use the standard <see cref="ArgumentException"/> family instead. vhost-user
/// protocol errors use the derived <c>VhostUserException</c>, which adds the protocol reason.
/// </remarks>
public class VhostException : Exception
{
    /// <summary>Creates an exception with a message and no errno.</summary>
    /// <param name="message">What went wrong, in words an operator can act on.</param>
    public VhostException(string message)
        : base(message)
    {
    }

    /// <summary>Creates an exception with a message wrapping another exception.</summary>
    /// <param name="message">What went wrong.</param>
    /// <param name="innerException">The exception that caused this one.</param>
    public VhostException(string message, Exception? innerException)
        : base(message, innerException)
    {
    }

    /// <summary>Creates an exception for a failed system call or ioctl.</summary>
    /// <param name="errno">The error number the kernel returned.</param>
    /// <param name="operation">The system call or ioctl that failed, for example <c>ioctl(VHOST_SET_OWNER)</c>.</param>
    /// <param name="detail">Optional extra context (a path, a queue index).</param>
    public VhostException(Errno errno, string operation, string? detail = null)
        : base(FormatMessage(errno, operation, detail))
    {
        Errno = errno;
        Operation = operation;
        HResult = (int)errno;
    }

    /// <summary>The errno of the failed call, or <see langword="null"/> when the error was not a system call failure.</summary>
    public Errno? Errno { get; }

    /// <summary>The system call or ioctl that failed, or <see langword="null"/>.</summary>
    public string? Operation { get; }

    /// <summary>Builds the message used for errno-carrying exceptions.</summary>
    /// <param name="errno">The error number.</param>
    /// <param name="operation">The failed operation.</param>
    /// <param name="detail">Optional context.</param>
    /// <returns>A message such as <c>ioctl(VHOST_GET_FEATURES) failed: ENOTTY (Inappropriate ioctl for device)</c>.</returns>
    protected static string FormatMessage(Errno errno, string operation, string? detail)
    {
        string text = System.Runtime.InteropServices.Marshal.GetPInvokeErrorMessage((int)errno);
        string name = Enum.IsDefined(errno) ? errno.ToString() : "errno " + ((int)errno).ToString(System.Globalization.CultureInfo.InvariantCulture);
        return detail is null
            ? $"{operation} failed: {name} ({text})"
            : $"{operation} failed: {name} ({text}); {detail}";
    }
}
