namespace Vhost;

/// <summary>
/// Linux error numbers (the generic values shared by x86_64 and aarch64), as carried by
/// <see cref="VhostException.ErrorCode"/> and sent on the vhost-user back-end channel.
/// </summary>
/// <remarks>
/// Internal, like dotnet/runtime's <c>Interop.Error</c>: the public surface carries the errno as the
/// <see cref="int"/> <see cref="VhostException.ErrorCode"/>, and the message names it symbolically.
/// </remarks>
/// <remarks>Member names are the C names from <c>&lt;errno.h&gt;</c>.</remarks>
internal enum Errno
{
    /// <summary>No error.</summary>
    None = 0,
    /// <summary>Operation not permitted (<c>EPERM</c>).</summary>
    EPERM = 1,
    /// <summary>No such file or directory (<c>ENOENT</c>).</summary>
    ENOENT = 2,
    /// <summary>No such process (<c>ESRCH</c>).</summary>
    ESRCH = 3,
    /// <summary>Interrupted system call (<c>EINTR</c>).</summary>
    EINTR = 4,
    /// <summary>Input/output error (<c>EIO</c>).</summary>
    EIO = 5,
    /// <summary>No such device or address (<c>ENXIO</c>).</summary>
    ENXIO = 6,
    /// <summary>Argument list too long (<c>E2BIG</c>).</summary>
    E2BIG = 7,
    /// <summary>Exec format error (<c>ENOEXEC</c>).</summary>
    ENOEXEC = 8,
    /// <summary>Bad file descriptor (<c>EBADF</c>).</summary>
    EBADF = 9,
    /// <summary>No child processes (<c>ECHILD</c>).</summary>
    ECHILD = 10,
    /// <summary>Resource temporarily unavailable (<c>EAGAIN</c>).</summary>
    EAGAIN = 11,
    /// <summary>Cannot allocate memory (<c>ENOMEM</c>).</summary>
    ENOMEM = 12,
    /// <summary>Permission denied (<c>EACCES</c>).</summary>
    EACCES = 13,
    /// <summary>Bad address (<c>EFAULT</c>).</summary>
    EFAULT = 14,
    /// <summary>Block device required (<c>ENOTBLK</c>).</summary>
    ENOTBLK = 15,
    /// <summary>Device or resource busy (<c>EBUSY</c>).</summary>
    EBUSY = 16,
    /// <summary>File exists (<c>EEXIST</c>).</summary>
    EEXIST = 17,
    /// <summary>Invalid cross-device link (<c>EXDEV</c>).</summary>
    EXDEV = 18,
    /// <summary>No such device (<c>ENODEV</c>).</summary>
    ENODEV = 19,
    /// <summary>Not a directory (<c>ENOTDIR</c>).</summary>
    ENOTDIR = 20,
    /// <summary>Is a directory (<c>EISDIR</c>).</summary>
    EISDIR = 21,
    /// <summary>Invalid argument (<c>EINVAL</c>).</summary>
    EINVAL = 22,
    /// <summary>Too many open files in system (<c>ENFILE</c>).</summary>
    ENFILE = 23,
    /// <summary>Too many open files (<c>EMFILE</c>).</summary>
    EMFILE = 24,
    /// <summary>Inappropriate ioctl for device (<c>ENOTTY</c>).</summary>
    ENOTTY = 25,
    /// <summary>Text file busy (<c>ETXTBSY</c>).</summary>
    ETXTBSY = 26,
    /// <summary>File too large (<c>EFBIG</c>).</summary>
    EFBIG = 27,
    /// <summary>No space left on device (<c>ENOSPC</c>).</summary>
    ENOSPC = 28,
    /// <summary>Illegal seek (<c>ESPIPE</c>).</summary>
    ESPIPE = 29,
    /// <summary>Read-only file system (<c>EROFS</c>).</summary>
    EROFS = 30,
    /// <summary>Too many links (<c>EMLINK</c>).</summary>
    EMLINK = 31,
    /// <summary>Broken pipe (<c>EPIPE</c>).</summary>
    EPIPE = 32,
    /// <summary>Numerical argument out of domain (<c>EDOM</c>).</summary>
    EDOM = 33,
    /// <summary>Numerical result out of range (<c>ERANGE</c>).</summary>
    ERANGE = 34,
    /// <summary>Resource deadlock avoided (<c>EDEADLK</c>).</summary>
    EDEADLK = 35,
    /// <summary>File name too long (<c>ENAMETOOLONG</c>).</summary>
    ENAMETOOLONG = 36,
    /// <summary>No locks available (<c>ENOLCK</c>).</summary>
    ENOLCK = 37,
    /// <summary>Function not implemented (<c>ENOSYS</c>).</summary>
    ENOSYS = 38,
    /// <summary>Directory not empty (<c>ENOTEMPTY</c>).</summary>
    ENOTEMPTY = 39,
    /// <summary>Too many levels of symbolic links (<c>ELOOP</c>).</summary>
    ELOOP = 40,
    /// <summary>No message of desired type (<c>ENOMSG</c>).</summary>
    ENOMSG = 42,
    /// <summary>Identifier removed (<c>EIDRM</c>).</summary>
    EIDRM = 43,
    /// <summary>Device not a stream (<c>ENOSTR</c>).</summary>
    ENOSTR = 60,
    /// <summary>No data available (<c>ENODATA</c>).</summary>
    ENODATA = 61,
    /// <summary>Timer expired (<c>ETIME</c>).</summary>
    ETIME = 62,
    /// <summary>Out of streams resources (<c>ENOSR</c>).</summary>
    ENOSR = 63,
    /// <summary>Link has been severed (<c>ENOLINK</c>).</summary>
    ENOLINK = 67,
    /// <summary>Protocol error (<c>EPROTO</c>).</summary>
    EPROTO = 71,
    /// <summary>Multihop attempted (<c>EMULTIHOP</c>).</summary>
    EMULTIHOP = 72,
    /// <summary>Bad message (<c>EBADMSG</c>).</summary>
    EBADMSG = 74,
    /// <summary>Value too large for defined data type (<c>EOVERFLOW</c>).</summary>
    EOVERFLOW = 75,
    /// <summary>File descriptor in bad state (<c>EBADFD</c>).</summary>
    EBADFD = 77,
    /// <summary>Invalid or incomplete multibyte or wide character (<c>EILSEQ</c>).</summary>
    EILSEQ = 84,
    /// <summary>Too many users (<c>EUSERS</c>).</summary>
    EUSERS = 87,
    /// <summary>Socket operation on non-socket (<c>ENOTSOCK</c>).</summary>
    ENOTSOCK = 88,
    /// <summary>Destination address required (<c>EDESTADDRREQ</c>).</summary>
    EDESTADDRREQ = 89,
    /// <summary>Message too long (<c>EMSGSIZE</c>).</summary>
    EMSGSIZE = 90,
    /// <summary>Protocol wrong type for socket (<c>EPROTOTYPE</c>).</summary>
    EPROTOTYPE = 91,
    /// <summary>Protocol not available (<c>ENOPROTOOPT</c>).</summary>
    ENOPROTOOPT = 92,
    /// <summary>Protocol not supported (<c>EPROTONOSUPPORT</c>).</summary>
    EPROTONOSUPPORT = 93,
    /// <summary>Socket type not supported (<c>ESOCKTNOSUPPORT</c>).</summary>
    ESOCKTNOSUPPORT = 94,
    /// <summary>Operation not supported (<c>EOPNOTSUPP</c>).</summary>
    EOPNOTSUPP = 95,
    /// <summary>Protocol family not supported (<c>EPFNOSUPPORT</c>).</summary>
    EPFNOSUPPORT = 96,
    /// <summary>Address family not supported by protocol (<c>EAFNOSUPPORT</c>).</summary>
    EAFNOSUPPORT = 97,
    /// <summary>Address already in use (<c>EADDRINUSE</c>).</summary>
    EADDRINUSE = 98,
    /// <summary>Cannot assign requested address (<c>EADDRNOTAVAIL</c>).</summary>
    EADDRNOTAVAIL = 99,
    /// <summary>Network is down (<c>ENETDOWN</c>).</summary>
    ENETDOWN = 100,
    /// <summary>Network is unreachable (<c>ENETUNREACH</c>).</summary>
    ENETUNREACH = 101,
    /// <summary>Network dropped connection on reset (<c>ENETRESET</c>).</summary>
    ENETRESET = 102,
    /// <summary>Software caused connection abort (<c>ECONNABORTED</c>).</summary>
    ECONNABORTED = 103,
    /// <summary>Connection reset by peer (<c>ECONNRESET</c>).</summary>
    ECONNRESET = 104,
    /// <summary>No buffer space available (<c>ENOBUFS</c>).</summary>
    ENOBUFS = 105,
    /// <summary>Transport endpoint is already connected (<c>EISCONN</c>).</summary>
    EISCONN = 106,
    /// <summary>Transport endpoint is not connected (<c>ENOTCONN</c>).</summary>
    ENOTCONN = 107,
    /// <summary>Cannot send after transport endpoint shutdown (<c>ESHUTDOWN</c>).</summary>
    ESHUTDOWN = 108,
    /// <summary>Too many references: cannot splice (<c>ETOOMANYREFS</c>).</summary>
    ETOOMANYREFS = 109,
    /// <summary>Connection timed out (<c>ETIMEDOUT</c>).</summary>
    ETIMEDOUT = 110,
    /// <summary>Connection refused (<c>ECONNREFUSED</c>).</summary>
    ECONNREFUSED = 111,
    /// <summary>Host is down (<c>EHOSTDOWN</c>).</summary>
    EHOSTDOWN = 112,
    /// <summary>No route to host (<c>EHOSTUNREACH</c>).</summary>
    EHOSTUNREACH = 113,
    /// <summary>Operation already in progress (<c>EALREADY</c>).</summary>
    EALREADY = 114,
    /// <summary>Operation now in progress (<c>EINPROGRESS</c>).</summary>
    EINPROGRESS = 115,
    /// <summary>Stale file handle (<c>ESTALE</c>).</summary>
    ESTALE = 116,
    /// <summary>Disk quota exceeded (<c>EDQUOT</c>).</summary>
    EDQUOT = 122,
    /// <summary>Operation canceled (<c>ECANCELED</c>).</summary>
    ECANCELED = 125,
    /// <summary>Owner died (<c>EOWNERDEAD</c>).</summary>
    EOWNERDEAD = 130,
    /// <summary>State not recoverable (<c>ENOTRECOVERABLE</c>).</summary>
    ENOTRECOVERABLE = 131,
    /// <summary>Operation not possible due to RF-kill (<c>ERFKILL</c>).</summary>
    ERFKILL = 132,
    /// <summary>Memory page has hardware error (<c>EHWPOISON</c>).</summary>
    EHWPOISON = 133,
}
