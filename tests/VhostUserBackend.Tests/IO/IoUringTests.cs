using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Win32.SafeHandles;
using Vhost;
using VhostUserBackend.IO;
using VhostUserBackend.Virtio;

namespace VhostUserBackend.Tests.IO;

/// <summary>
/// <see cref="IoUring"/> on a temporary file: read, write, fsync, fallocate, many operations in
/// flight, errors as negative results, completions through a registered eventfd, no fd leak, no
/// allocation on the submit and reap paths (the interop structs are checked against
/// <c>&lt;linux/io_uring.h&gt;</c> in Common/Interop).
/// Skipped (with the reason) where io_uring is unavailable.
/// </summary>
[Collection("FdCount")]
public sealed unsafe class IoUringTests : IDisposable
{
    private readonly string _path = Path.Combine(Path.GetTempPath(), $"iouring-{Guid.NewGuid():N}");
    private readonly SafeFileHandle _file;

    public IoUringTests()
    {
        _file = File.OpenHandle(_path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.ReadWrite);
    }

    public void Dispose()
    {
        _file.Dispose();
        File.Delete(_path);
    }

    [Fact]
    public void The_public_vector_and_completion_structs_match_the_kernel_abi()
    {
        // The Interop structs and constants are in the layout table and the C cross-check
        // (Common/Interop); these two public structs are passed to the kernel as iovec and cqe.
        Assert.Equal(16, sizeof(Iovec));
        Assert.Equal(8, (int)Marshal.OffsetOf<Iovec>(nameof(Iovec.Length)));
        Assert.Equal(16, sizeof(IoUringCompletion));
        Assert.Equal(sizeof(IoUringInterop.io_uring_cqe), sizeof(IoUringCompletion));
    }

    [Fact]
    public void Writes_reads_syncs_and_fallocates_a_file()
    {
        using IoUring ring = CreateOrSkip(8);
        ring.RegisterFiles([_file]);
        byte[] data = Enumerable.Range(0, 8192).Select(i => (byte)(i * 7)).ToArray();
        byte[] back = new byte[8192];
        fixed (byte* d = data)
        fixed (byte* r = back)
        {
            Iovec* w = stackalloc Iovec[2];
            w[0] = new Iovec((nint)(d), 4096);
            w[1] = new Iovec((nint)(d + 4096), 4096);
            Assert.True(ring.TryPrepareWritev(0, w, 2, 4096, userData: 1));
            Assert.Equal(1, ring.SubmitAndWait(1));
            Assert.True(ring.TryGetCompletion(out IoUringCompletion c));
            Assert.Equal((1UL, 8192), (c.UserData, c.Result));

            Assert.True(ring.TryPrepareFsync(0, dataOnly: true, userData: 2));
            Assert.True(ring.TryPrepareFsync(0, dataOnly: false, userData: 3));
            ring.SubmitAndWait(2);
            var done = new Dictionary<ulong, int>();
            while (done.Count < 2)
            {
                ring.SubmitAndWait(1);
                while (ring.TryGetCompletion(out c))
                {
                    done[c.UserData] = c.Result;
                }
            }

            Assert.Equal(0, done[2]);
            Assert.Equal(0, done[3]);

            Iovec v = new((nint)r, 8192);
            Assert.True(ring.TryPrepareReadv(0, &v, 1, 4096, userData: 4));
            ring.SubmitAndWait(1);
            Assert.True(ring.TryGetCompletion(out c));
            Assert.Equal((4UL, 8192), (c.UserData, c.Result));
            Assert.Equal(data, back);

            // A punched hole reads as zeroes; the size is kept.
            Assert.True(ring.TryPrepareFallocate(0, FallocateMode.PunchHole | FallocateMode.KeepSize, 4096, 4096, userData: 5));
            ring.SubmitAndWait(1);
            Assert.True(ring.TryGetCompletion(out c));
            Assert.Equal(0, c.ErrorCode);
            Assert.Equal(12288, RandomAccess.GetLength(_file));
            Assert.Equal(4096, RandomAccess.Read(_file, back.AsSpan(0, 4096), 4096));
            Assert.All(back.AsSpan(0, 4096).ToArray(), b => Assert.Equal(0, b));

            // A read past the end is short (0 bytes), not an error.
            Assert.True(ring.TryPrepareReadv(0, &v, 1, 1 << 20, userData: 6));
            ring.SubmitAndWait(1);
            Assert.True(ring.TryGetCompletion(out c));
            Assert.Equal((6UL, 0), (c.UserData, c.Result));
        }
    }

    [Fact]
    public void Many_operations_in_flight_complete_once_each()
    {
        const int Blocks = 256;
        using IoUring ring = CreateOrSkip(32);
        ring.RegisterFiles([_file]);
        byte[] buffer = GC.AllocateArray<byte>(Blocks * 512, pinned: true);
        for (int i = 0; i < Blocks; i++)
        {
            buffer.AsSpan(i * 512, 512).Fill((byte)i);
        }

        Iovec[] vectors = GC.AllocateArray<Iovec>(Blocks, pinned: true);
        fixed (byte* b = buffer)
        fixed (Iovec* v = vectors)
        {
            var seen = new bool[Blocks];
            int next = 0;
            int completed = 0;
            while (completed < Blocks)
            {
                // Fill the ring, submit, reap: more operations than the ring holds, so it fills up.
                while (next < Blocks)
                {
                    v[next] = new Iovec((nint)(b + (next * 512)), 512);
                    if (!ring.TryPrepareWritev(0, v + next, 1, (Blocks - 1 - next) * 512L, (ulong)next))
                    {
                        break;
                    }

                    next++;
                }

                ring.SubmitAndWait(1);
                while (ring.TryGetCompletion(out IoUringCompletion c))
                {
                    Assert.Equal(512, c.Result);
                    Assert.False(seen[c.UserData], $"completion {c.UserData} arrived twice");
                    seen[c.UserData] = true;
                    completed++;
                }
            }

            Assert.Equal(0, ring.PendingSubmissions);
        }

        byte[] file = File.ReadAllBytes(_path);
        for (int i = 0; i < Blocks; i++)
        {
            Assert.Equal((byte)i, file[(Blocks - 1 - i) * 512]);
        }
    }

    [Fact]
    public void Errors_arrive_as_negative_results()
    {
        using IoUring ring = CreateOrSkip(8);
        ring.RegisterFiles([_file, null]);
        byte[] one = new byte[512];
        fixed (byte* p = one)
        {
            Iovec v = new((nint)p, 512);

            // An empty slot and an index past the table: EBADF.
            Assert.True(ring.TryPrepareReadv(1, &v, 1, 0, userData: 10));
            Assert.True(ring.TryPrepareReadv(7, &v, 1, 0, userData: 11));

            // A negative offset and an invalid fallocate mode: EINVAL.
            Assert.True(ring.TryPrepareReadv(0, &v, 1, -4096, userData: 12));
            Assert.True(ring.TryPrepareFallocate(0, FallocateMode.PunchHole, 0, 4096, userData: 13));
            ring.Submit();
            var results = new Dictionary<ulong, Errno>();
            while (results.Count < 4)
            {
                ring.SubmitAndWait(1);
                while (ring.TryGetCompletion(out IoUringCompletion c))
                {
                    Assert.True(c.Result < 0);
                    results[c.UserData] = (Errno)c.ErrorCode;
                }
            }

            Assert.Equal(Errno.EBADF, results[10]);
            Assert.Equal(Errno.EBADF, results[11]);
            Assert.Equal(Errno.EINVAL, results[12]);
            Assert.Equal(Errno.EOPNOTSUPP, results[13]);
        }
    }

    [Fact]
    public void Completions_signal_a_registered_eventfd()
    {
        using IoUring ring = CreateOrSkip(4);
        using EventFd done = new EventFd(EventFdFlags.NonBlocking);
        ring.RegisterEventFd(done);
        Assert.False(done.TryRead(out _));
        Assert.True(ring.TryPrepareNop(42));
        Assert.Equal(1, ring.Submit());
        Assert.True(SpinWait.SpinUntil(() => done.TryRead(out _), 5000));
        Assert.True(ring.TryGetCompletion(out IoUringCompletion c));
        Assert.Equal((42UL, 0), (c.UserData, c.Result));
    }

    [Fact]
    public void Dispose_closes_every_descriptor_and_mapping()
    {
        using (CreateOrSkip(4))
        {
        }

        // The ring's own mappings (the kernel names them after its io_uring inode) are counted,
        // not the whole map: the runtime maps and unmaps memory of its own (GC, JIT) meanwhile.
        static int RingMappings() => File.ReadAllLines("/proc/self/maps").Count(l => l.Contains("io_uring", StringComparison.Ordinal));
        int fds = TestHelpers.OpenFdCount();
        int maps = RingMappings();
        for (int i = 0; i < 50; i++)
        {
            using IoUring ring = IoUring.Create(64);
            ring.RegisterFiles([_file]);
            using EventFd e = new EventFd(EventFdFlags.NonBlocking);
            ring.RegisterEventFd(e);
            Assert.True(RingMappings() > maps, "a live ring's mappings are visible in /proc/self/maps");
        }

        Assert.Equal(fds, TestHelpers.OpenFdCount());
        Assert.Equal(maps, RingMappings());
        IoUring disposed = IoUring.Create(4);
        disposed.Dispose();
        disposed.Dispose();
        Assert.Throws<ObjectDisposedException>(() => disposed.TryPrepareNop(1));
    }

    [Fact]
    public void Submitting_and_reaping_allocate_nothing()
    {
        using IoUring ring = CreateOrSkip(16);
        ring.RegisterFiles([_file]);
        byte[] buffer = GC.AllocateArray<byte>(4096, pinned: true);
        fixed (byte* b = buffer)
        {
            Iovec* v = (Iovec*)NativeMemory.Alloc((nuint)sizeof(Iovec));
            *v = new Iovec((nint)(b), 4096);
            void Round()
            {
                for (int i = 0; i < 8; i++)
                {
                    ring.TryPrepareWritev(0, v, 1, i * 4096L, (ulong)i);
                }

                ring.TryPrepareFsync(0, true, 99);
                int seen = 0;
                while (seen < 9)
                {
                    ring.SubmitAndWait(1);
                    while (ring.TryGetCompletion(out _))
                    {
                        seen++;
                    }
                }
            }

            Round();
            long before = GC.GetAllocatedBytesForCurrentThread();
            for (int r = 0; r < 20; r++)
            {
                Round();
            }

            Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
            NativeMemory.Free(v);
        }
    }

    [Fact]
    public void A_full_completion_ring_loses_nothing()
    {
        // 4 submission entries, 8 completion entries: 64 nops overflow the completion ring (NODROP keeps them).
        using IoUring ring = CreateOrSkip(4);
        int submitted = 0;
        for (int round = 0; round < 16; round++)
        {
            for (int i = 0; i < 4; i++)
            {
                Assert.True(ring.TryPrepareNop((ulong)submitted++));
            }

            while (ring.PendingSubmissions > 0)
            {
                if (ring.Submit() == 0)
                {
                    // EBUSY: the overflow must be reaped first; fine, stop submitting.
                    break;
                }
            }

            if (ring.PendingSubmissions > 0)
            {
                break;
            }
        }

        var seen = new HashSet<ulong>();
        while (seen.Count < submitted)
        {
            while (ring.TryGetCompletion(out IoUringCompletion c))
            {
                Assert.True(seen.Add(c.UserData));
            }

            ring.SubmitAndWait(ring.PendingSubmissions > 0 ? 1 : 0);
        }

        Assert.Equal(submitted, seen.Count);
    }

    private static IoUring CreateOrSkip(uint entries)
    {
        if (!IoUring.TryCreate(entries, out IoUring? ring, out VhostException? error))
        {
            Assert.Skip($"io_uring is not available here ({error.Message}): kernel.io_uring_disabled, seccomp or an old kernel");
        }

        return ring;
    }
}
