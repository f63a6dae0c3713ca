using System.Runtime.InteropServices;

internal static unsafe partial class Interop
{
    internal const int SCM_RIGHTS = 1;
    internal const int MSG_PEEK = 0x2;
    internal const int MSG_CTRUNC = 0x8;
    internal const int MSG_DONTWAIT = 0x40;
    internal const int MSG_WAITALL = 0x100;
    internal const int MSG_NOSIGNAL = 0x4000;
    internal const int MSG_CMSG_CLOEXEC = 0x40000000;

    /// <summary><c>struct msghdr</c> (56 bytes on 64-bit).</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct msghdr
    {
        public void* msg_name;
        public uint msg_namelen;
        public iovec* msg_iov;
        public nuint msg_iovlen;
        public void* msg_control;
        public nuint msg_controllen;
        public int msg_flags;
    }

    /// <summary><c>struct cmsghdr</c> (16 bytes on 64-bit); the data follows at <see cref="CmsgAlign"/>(16).</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct cmsghdr
    {
        public nuint cmsg_len;
        public int cmsg_level;
        public int cmsg_type;
    }

    /// <summary><c>CMSG_ALIGN</c>: rounds up to the size of <c>size_t</c>.</summary>
    internal static int CmsgAlign(int length) => (length + sizeof(nuint) - 1) & ~(sizeof(nuint) - 1);

    /// <summary>
    /// <c>CMSG_LEN</c>: the aligned header plus the payload, which is NOT aligned. Aligning it too
    /// (as Tmds.LibC does) makes the kernel read padding as one more fd (fd 0).
    /// </summary>
    internal static int CmsgLen(int payloadLength) => CmsgAlign(sizeof(cmsghdr)) + payloadLength;

    /// <summary><c>CMSG_SPACE</c>: the aligned header plus the aligned payload.</summary>
    internal static int CmsgSpace(int payloadLength) => CmsgAlign(sizeof(cmsghdr)) + CmsgAlign(payloadLength);

    [LibraryImport(Libc, EntryPoint = "sendmsg", SetLastError = true)]
    internal static partial nint sendmsg(int fd, msghdr* msg, int flags);

    [LibraryImport(Libc, EntryPoint = "recvmsg", SetLastError = true)]
    internal static partial nint recvmsg(int fd, msghdr* msg, int flags);
}
