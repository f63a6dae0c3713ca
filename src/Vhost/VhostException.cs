namespace Vhost;

/// <summary>
/// The error thrown by every vhost frontend and by the Linux interop underneath it: a failed
/// system call or ioctl (with its Linux errno in <see cref="ErrorCode"/>), or a device that refused an operation.
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
    /// <param name="errorCode">The Linux errno the call returned (positive, for example 22 for <c>EINVAL</c>).</param>
    /// <param name="operation">The system call or ioctl that failed, for example <c>ioctl(VHOST_SET_OWNER)</c>.</param>
    /// <param name="detail">Optional extra context (a path, a queue index).</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="errorCode"/> is not positive.</exception>
    public VhostException(int errorCode, string operation, string? detail = null)
        : this((Errno)ValidErrorCode(errorCode), operation, detail)
    {
    }

    internal VhostException(Errno errno, string operation, string? detail = null)
        : base(FormatMessage(errno, operation, detail))
    {
        ErrorCode = (int)errno;
        Operation = operation;
        HResult = (int)errno;
    }

    /// <summary>
    /// The Linux errno of the failed system call or ioctl (the positive value from
    /// <c>&lt;errno.h&gt;</c>, for example 22 for <c>EINVAL</c>, 1 for <c>EPERM</c>; the message names it
    /// symbolically), or 0 when the error was not a system call failure.
    /// </summary>
    public int ErrorCode { get; }

    /// <summary>The errno as the internal enum, or <see langword="null"/> when <see cref="ErrorCode"/> is 0.</summary>
    internal Errno? Errno => ErrorCode == 0 ? null : (Errno)ErrorCode;

    /// <summary>The system call or ioctl that failed, or <see langword="null"/>.</summary>
    public string? Operation { get; }

    /// <summary>Builds the message used for errno-carrying exceptions.</summary>
    /// <param name="errno">The error number.</param>
    /// <param name="operation">The failed operation.</param>
    /// <param name="detail">Optional context.</param>
    /// <returns>A message such as <c>ioctl(VHOST_GET_FEATURES) failed: ENOTTY (Inappropriate ioctl for device)</c>.</returns>
    private static string FormatMessage(Errno errno, string operation, string? detail)
    {
        string text = System.Runtime.InteropServices.Marshal.GetPInvokeErrorMessage((int)errno);
        string name = Enum.IsDefined(errno) ? errno.ToString() : "errno " + ((int)errno).ToString(System.Globalization.CultureInfo.InvariantCulture);
        return detail is null
            ? $"{operation} failed: {name} ({text})"
            : $"{operation} failed: {name} ({text}); {detail}";
    }

    private static int ValidErrorCode(int errorCode)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(errorCode);
        return errorCode;
    }
}
