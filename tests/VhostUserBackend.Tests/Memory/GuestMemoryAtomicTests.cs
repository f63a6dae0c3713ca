using VhostUserBackend.Memory;
using VhostUserBackend.Testing;

namespace VhostUserBackend.Tests.Memory;

[Collection("FdCount")]
public sealed unsafe class GuestMemoryAtomicTests
{
    private const ulong Page = 4096;

    [Fact]
    public void Replace_WhileReaderHoldsSnapshot_OldMappingStaysUntilReleased()
    {
        int fdsBefore = TestHelpers.OpenFdCount();
        using var oldRam = GuestRam.Create(16 * Page, 0x100000);
        using var newRam = GuestRam.Create(16 * Page, 0x100000);
        oldRam.Write(0x100000, "old!"u8);
        newRam.Write(0x100000, "new!"u8);
        var atomic = new GuestMemoryAtomic(oldRam.CreateGuestMemory());
        using TestHelpers.AtomicOwner owner = TestHelpers.Owning(atomic);

        GuestMemory reader = atomic.Acquire();
        nuint oldHost = (nuint)reader.Regions[0].Host;
        atomic.Replace(newRam.CreateGuestMemory());

        // The reader still sees the old mapping; new readers see the new one.
        Assert.True("old!"u8.SequenceEqual(reader.GetSpan(0x100000, 4)));
        Assert.True(TestHelpers.IsMapped(oldHost, 16 * Page));
        GuestMemory fresh = atomic.Acquire();
        Assert.True("new!"u8.SequenceEqual(fresh.GetSpan(0x100000, 4)));
        Assert.NotSame(reader, fresh);
        fresh.Release();

        reader.Release();
        Assert.True(reader.IsReleased);
        Assert.True(reader.Regions[0].IsUnmapped);
        Assert.False(TestHelpers.IsMapped(oldHost, 16 * Page));

        oldRam.Dispose();
        newRam.Dispose();
        atomic.Dispose();
        Assert.Equal(fdsBefore, TestHelpers.OpenFdCount());
    }

    [Fact]
    public void Lease_KeepsItsSnapshotMappedAcrossAnUpdate_UntilDisposed_AndDisposingTwiceIsHarmless()
    {
        using var oldRam = GuestRam.Create(16 * Page, 0x100000);
        using var newRam = GuestRam.Create(16 * Page, 0x100000);
        oldRam.Write(0x100000, "old!"u8);
        newRam.Write(0x100000, "new!"u8);
        var atomic = new GuestMemoryAtomic(oldRam.CreateGuestMemory());
        using TestHelpers.AtomicOwner owner = TestHelpers.Owning(atomic);

        GuestMemoryLease lease = atomic.Lease();
        GuestMemory leased = lease.Memory;
        nuint oldHost = (nuint)leased.Regions[0].Host;
        atomic.Replace(newRam.CreateGuestMemory());
        Assert.True("old!"u8.SequenceEqual(lease.Memory.GetSpan(0x100000, 4)));
        using (GuestMemoryLease fresh = atomic.Lease())
        {
            Assert.True("new!"u8.SequenceEqual(fresh.Memory.GetSpan(0x100000, 4)));
        }

        lease.Dispose();
        Assert.True(leased.IsReleased);
        Assert.False(TestHelpers.IsMapped(oldHost, 16 * Page));
        Assert.Throws<ObjectDisposedException>(() => lease.Memory);

        // A second Dispose must not release the snapshot's reference again: with the holder's
        // reference gone, that would unmap the memory under another lease still holding it.
        GuestMemoryLease first = atomic.Lease();
        using GuestMemoryLease second = atomic.Lease();
        atomic.Replace(oldRam.CreateGuestMemory());
        first.Dispose();
        first.Dispose();
        Assert.False(second.Memory.IsReleased);
        Assert.True("new!"u8.SequenceEqual(second.Memory.GetSpan(0x100000, 4)));
    }

    [Fact]
    public void AddAndRemoveRegion_KeepOtherRegionsMapped()
    {
        using var ram = GuestRam.Create([(0x0, 4 * Page), (0x100000, 4 * Page)]);
        GuestMemoryRegion[] regions = ram.MapRegions();
        var atomic = new GuestMemoryAtomic();
        using TestHelpers.AtomicOwner owner = TestHelpers.Owning(atomic);
        atomic.AddRegion(regions[0]);
        long generation = atomic.Generation;
        atomic.AddRegion(regions[1]);
        Assert.NotEqual(generation, atomic.Generation);

        GuestMemory both = atomic.Acquire();
        Assert.Equal(2, both.Regions.Count);
        atomic.RemoveRegion(0x0, 4 * Page);
        GuestMemory one = atomic.Acquire();
        Assert.Single(one.Regions);
        Assert.False(regions[0].IsUnmapped);
        both.Release();
        Assert.True(regions[0].IsUnmapped);
        Assert.False(regions[1].IsUnmapped);
        one.Release();
        Assert.Throws<ArgumentException>(() => atomic.RemoveRegion(0x0, 4 * Page));
        atomic.Dispose();
        Assert.True(regions[1].IsUnmapped);
    }

    [Fact]
    public void Acquire_AfterDispose_Throws()
    {
        var atomic = new GuestMemoryAtomic();
        atomic.Dispose();
        atomic.Dispose();
        Assert.Throws<ObjectDisposedException>(() => atomic.Acquire());
        Assert.Throws<ObjectDisposedException>(() => atomic.Replace(GuestMemory.CreateEmpty()));
    }

    [Fact]
    public void ConcurrentReadersAndUpdates_NeverSeeAnUnmappedSnapshot()
    {
        using var ram = GuestRam.Create(Page, 0x1000);
        ram.Write(0x1000, BitConverter.GetBytes(0xC0FFEEUL));
        var atomic = new GuestMemoryAtomic(ram.CreateGuestMemory());
        using TestHelpers.AtomicOwner owner = TestHelpers.Owning(atomic);
        bool stop = false;
        long reads = 0;
        long bad = 0;
        var readers = Enumerable.Range(0, 2).Select(_ => new Thread(() =>
        {
            while (!Volatile.Read(ref stop))
            {
                GuestMemory m = atomic.Acquire();
                if (m.Read<ulong>(0x1000) != 0xC0FFEEUL)
                {
                    Interlocked.Increment(ref bad);
                }

                m.Release();
                Interlocked.Increment(ref reads);
            }
        })).ToArray();
        foreach (Thread t in readers)
        {
            t.Start();
        }

        for (int i = 0; i < 200; i++)
        {
            atomic.Replace(ram.CreateGuestMemory());
        }

        Volatile.Write(ref stop, true);
        foreach (Thread t in readers)
        {
            t.Join();
        }

        Assert.True(Interlocked.Read(ref reads) > 0);
        Assert.Equal(0, Interlocked.Read(ref bad));
    }
}
