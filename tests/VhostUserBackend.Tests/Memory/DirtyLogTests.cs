using Microsoft.Win32.SafeHandles;
using VhostUserBackend.Memory;
using VhostUserBackend.Testing;

namespace VhostUserBackend.Tests.Memory;

public sealed class DirtyLogTests
{
    private const ulong Page = 4096;

    private static HashSet<ulong> SetBits(SafeFileHandle logFd, int size)
    {
        byte[] bitmap = new byte[size];
        Fd.PRead(logFd, bitmap, 0);
        var bits = new HashSet<ulong>();
        for (int i = 0; i < bitmap.Length * 8; i++)
        {
            if ((bitmap[i / 8] & (1 << (i % 8))) != 0)
            {
                bits.Add((ulong)i);
            }
        }

        return bits;
    }

    [Fact]
    public void MarkDirty_SetsExactlyTheWrittenPages()
    {
        // 100 bytes of bitmap: 96 bytes in whole 64-bit words plus a 4-byte tail (pages 768..799).
        using SafeFileHandle logFd = TestHelpers.MemFd((long)Page);
        using DirtyLog log = DirtyLog.Map(logFd, 0, 100);
        Assert.Equal(800UL, log.PageCount);
        var expected = new HashSet<ulong>();
        void Mark(ulong gpa, ulong length, params ulong[] pages)
        {
            log.MarkDirty(gpa, length);
            expected.UnionWith(pages);
        }

        Mark(0x0, 1, 0);
        Mark((5 * Page) - 1, 2, 4, 5);
        Mark(63 * Page, (2 * Page) + 1, 63, 64, 65);
        Mark(100 * Page, 0);
        Mark(200 * Page, 130 * Page, [.. Enumerable.Range(200, 130).Select(i => (ulong)i)]);
        Mark(766 * Page, 5 * Page, 766, 767, 768, 769, 770);
        Mark(799 * Page, 10 * Page, 799);
        Mark(5000 * Page, Page);
        Mark(ulong.MaxValue - 10, 100);
        Assert.Equal(expected.Order(), SetBits(logFd, 100).Order());
        Assert.True(log.IsDirty(769));
        Assert.False(log.IsDirty(771));
        Assert.Throws<ArgumentOutOfRangeException>(() => log.IsDirty(800));
    }

    [Fact]
    public void GuestMemoryWrites_AreLogged_OnlyWhileALogIsSet()
    {
        using var ram = GuestRam.Create([(0x0, 64 * Page), (0x100000, 16 * Page)]);
        using SafeFileHandle logFd = TestHelpers.MemFd((long)Page);
        using var log = DirtyLog.Map(logFd, 0, Page);
        var atomic = new GuestMemoryAtomic(ram.CreateGuestMemory());
        using TestHelpers.AtomicOwner owner = TestHelpers.Owning(atomic);

        GuestMemory m = atomic.Acquire();
        m.Write(0x3000, new byte[10]);
        m.Release();
        Assert.Empty(SetBits(logFd, (int)Page));

        atomic.SetDirtyLog(log);
        m = atomic.Acquire();
        Assert.Same(log, m.DirtyLog);
        m.Write(0x3ff0, new byte[0x20]);
        m.Write<uint>(0x100000 + (3 * Page), 7);
        m.MarkDirty(0x20000, 1);
        m.Release();
        Assert.Equal([3UL, 4UL, 0x20UL, 0x103UL], SetBits(logFd, (int)Page).Order());

        atomic.SetDirtyLog(null);
        m = atomic.Acquire();
        m.Write(0x8000, new byte[1]);
        m.Release();
        Assert.DoesNotContain(8UL, SetBits(logFd, (int)Page));
    }

    [Fact]
    public void Map_Validates()
    {
        using SafeFileHandle logFd = TestHelpers.MemFd((long)Page);
        Assert.Throws<ArgumentException>(() => DirtyLog.Map(logFd, 0, 0));
        Assert.Throws<ArgumentException>(() => DirtyLog.Map(logFd, 0, 2 * Page));
        Assert.Throws<ArgumentException>(() => DirtyLog.Map(logFd, ulong.MaxValue, 1));
    }

    [Fact]
    public void LogStaysMappedWhileASnapshotUsesIt()
    {
        using var ram = GuestRam.Create(Page);
        using SafeFileHandle logFd = TestHelpers.MemFd((long)Page);
        var log = DirtyLog.Map(logFd, 0, 8);
        GuestMemory m = ram.CreateGuestMemory(log);
        log.Dispose();
        Assert.False(log.IsUnmapped);
        m.Write(0, new byte[1]);
        Assert.True(log.IsDirty(0));
        m.Dispose();
        Assert.True(log.IsUnmapped);
    }
}
