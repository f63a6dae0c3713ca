using System.Runtime.InteropServices;

namespace VhostUserBackend.IO;

/// <summary>A completion of an <see cref="IoUring"/> (the kernel's <c>io_uring_cqe</c>).</summary>
[StructLayout(LayoutKind.Sequential)]
public readonly struct IoUringCompletion
{
    private readonly ulong _userData;
    private readonly int _result;
    private readonly uint _flags;

    /// <summary>Creates a completion (for tests and for devices that complete without a ring).</summary>
    /// <param name="userData">The value given when the operation was prepared.</param>
    /// <param name="result">The result: bytes transferred or 0, or a negated errno.</param>
    /// <param name="flags">The kernel's completion flags.</param>
    public IoUringCompletion(ulong userData, int result, uint flags = 0)
    {
        _userData = userData;
        _result = result;
        _flags = flags;
    }

    /// <summary>The value given when the operation was prepared.</summary>
    public ulong UserData => _userData;

    /// <summary>The result: bytes transferred (read/write), 0 (fsync, fallocate), or a negated errno (for example -5 for EIO).</summary>
    public int Result => _result;

    /// <summary>The kernel's completion flags (<c>IORING_CQE_F_*</c>).</summary>
    public uint Flags => _flags;

    /// <summary>The Linux errno of a failed operation (positive, for example 5 for EIO), or 0 when <see cref="Result"/> is not negative.</summary>
    public int ErrorCode => _result < 0 ? -_result : 0;
}
