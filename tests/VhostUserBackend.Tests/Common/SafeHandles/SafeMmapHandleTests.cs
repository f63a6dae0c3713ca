using System.IO.Pipes;
using Microsoft.Win32.SafeHandles;
using Vhost;

namespace VhostUserBackend.Tests.Common.SafeHandles;

public sealed unsafe class SafeMmapHandleTests
{
    private static readonly int PageSize = Environment.SystemPageSize;

    [Fact]
    public void A_write_through_one_mapping_is_visible_through_an_independent_second_mapping_and_pread()
    {
        using SafeFileHandle memfd = Fd.CreateMemFd("guest-ram", 4L * PageSize);
        using SafeFileHandle other = Fd.Duplicate(memfd);
        using SafeMmapHandle first = SafeMmapHandle.MapShared(memfd, 0, (ulong)(4 * PageSize));
        using SafeMmapHandle second = SafeMmapHandle.MapShared(other, PageSize, (ulong)(2 * PageSize));
        Assert.NotEqual((nint)first.Pointer, (nint)second.Pointer);

        // SAFETY: both mappings are alive (using) and the offsets are inside them.
        first.Pointer[PageSize + 7] = 0xA5;
        *(ulong*)(first.Pointer + (2 * PageSize) - 8) = 0x1122334455667788;
        Assert.Equal(0xA5, second.Pointer[7]);
        Assert.Equal(0x1122334455667788UL, *(ulong*)(second.Pointer + PageSize - 8));

        // And the other way round.
        second.Pointer[PageSize] = 0x5A;
        Assert.Equal(0x5A, first.Pointer[2 * PageSize]);

        var bytes = new byte[1];
        Fd.PRead(memfd, bytes, PageSize + 7);
        Assert.Equal(0xA5, bytes[0]);
        Fd.PWrite(memfd, [0x3C], 3 * PageSize);
        Assert.Equal(0x3C, first.Pointer[3 * PageSize]);
    }

    [Fact]
    public void Length_is_kept_rounded_to_the_page_size()
    {
        using SafeFileHandle memfd = Fd.CreateMemFd("len", 2L * PageSize);
        using SafeMmapHandle map = SafeMmapHandle.MapShared(memfd, 0, 100);
        Assert.Equal((nuint)PageSize, map.Length);
        Assert.Equal(PageSize, SafeMmapHandle.PageSizeOf(memfd));
    }

    [Theory]
    [InlineData(0L, 2)]      // twice the file
    [InlineData(1L, 1)]      // the page after the last
    [InlineData(1L, 0)]      // one byte past the end (length in bytes below)
    public void A_range_past_the_end_of_the_file_is_refused_before_mapping(long offsetPages, int lengthPages)
    {
        using SafeFileHandle memfd = Fd.CreateMemFd("short", PageSize);
        ulong length = lengthPages == 0 ? 1UL : (ulong)(lengthPages * PageSize);
        var e = Assert.Throws<ArgumentException>(() => SafeMmapHandle.MapShared(memfd, offsetPages * PageSize, length));
        Assert.Equal("length", e.ParamName);
        Assert.Contains("SIGBUS", e.Message);
        Assert.Equal((long)PageSize, Fd.Stat(memfd).Size); // the file was not grown
    }

    [Fact]
    public void Exactly_the_file_size_is_allowed()
    {
        using SafeFileHandle memfd = Fd.CreateMemFd("exact", 2L * PageSize);
        using SafeMmapHandle map = SafeMmapHandle.MapShared(memfd, PageSize, (ulong)PageSize);
        map.Pointer[PageSize - 1] = 1;
    }

    [Theory]
    [InlineData(1L)]
    [InlineData(100L)]
    [InlineData(2048L)]
    public void A_misaligned_offset_is_refused(long offset)
    {
        using SafeFileHandle memfd = Fd.CreateMemFd("misaligned", 4L * PageSize);
        var e = Assert.Throws<ArgumentException>(() => SafeMmapHandle.MapShared(memfd, offset, (ulong)PageSize));
        Assert.Equal("offset", e.ParamName);
        Assert.Contains("aligned", e.Message);
    }

    [Fact]
    public void Zero_length_is_refused()
    {
        using SafeFileHandle memfd = Fd.CreateMemFd("zero", PageSize);
        Assert.Equal("length", Assert.Throws<ArgumentException>(() => SafeMmapHandle.MapShared(memfd, 0, 0)).ParamName);
        Assert.Equal("length", Assert.Throws<ArgumentException>(() => SafeMmapHandle.MapAnonymous(0)).ParamName);
    }

    [Theory]
    [InlineData(0L, ulong.MaxValue)]
    [InlineData(long.MaxValue - 4095, 8192UL)]
    [InlineData(4096L, (ulong)long.MaxValue)]
    public void Offset_plus_length_overflow_is_refused(long offset, ulong length)
    {
        using SafeFileHandle memfd = Fd.CreateMemFd("overflow", PageSize);
        var e = Assert.Throws<ArgumentException>(() => SafeMmapHandle.MapShared(memfd, offset, length));
        Assert.Equal("length", e.ParamName);
        Assert.Contains("overflow", e.Message);
    }

    [Fact]
    public void A_negative_offset_is_refused()
    {
        using SafeFileHandle memfd = Fd.CreateMemFd("negative", PageSize);
        Assert.Equal("offset", Assert.Throws<ArgumentOutOfRangeException>(() => SafeMmapHandle.MapShared(memfd, -PageSize, 1)).ParamName);
    }

    [Fact]
    public void A_pipe_or_socket_is_refused()
    {
        using var server = new AnonymousPipeServerStream(PipeDirection.Out);
        Assert.Equal(global::Interop.S_IFIFO, Fd.Stat(server.SafePipeHandle).FileType);
        Assert.Equal("fd", Assert.Throws<ArgumentException>(() => SafeMmapHandle.MapShared(server.SafePipeHandle, 0, (ulong)PageSize)).ParamName);

        var (a, b) = UnixSocket.CreatePair();
        using (a)
        using (b)
        {
            Assert.Equal("fd", Assert.Throws<ArgumentException>(() => SafeMmapHandle.MapShared(a, 0, (ulong)PageSize)).ParamName);
        }
    }

    [Fact]
    public void A_bad_fd_is_EBADF()
    {
        using var bad = new SafeFileHandle((nint)int.MaxValue, ownsHandle: false);
        Assert.Equal(Errno.EBADF, Assert.Throws<VhostException>(() => SafeMmapHandle.MapShared(bad, 0, (ulong)PageSize)).Errno);
    }

    [Fact]
    public void The_mapping_outlives_the_fd()
    {
        SafeFileHandle memfd = Fd.CreateMemFd("outlive", PageSize);
        using SafeMmapHandle map = SafeMmapHandle.MapShared(memfd, 0, (ulong)PageSize);
        memfd.Dispose();
        map.Pointer[0] = 9;
        Assert.Equal(9, map.Pointer[0]);
    }

    [Fact]
    public void Anonymous_mappings_are_zeroed_and_writable()
    {
        using SafeMmapHandle map = SafeMmapHandle.MapAnonymous((ulong)(3 * PageSize));
        var span = new Span<byte>(map.Pointer, 3 * PageSize);
        Assert.True(span.IndexOfAnyExcept((byte)0) < 0);
        span.Fill(0xFF);
        map.Advise(global::Interop.MADV_DONTNEED);
        Assert.Equal(0, span[0]); // MADV_DONTNEED on private anonymous memory drops the pages
    }
}
