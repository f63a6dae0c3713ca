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
/// allocation on the submit and reap paths; the interop structs against <c>&lt;linux/io_uring.h&gt;</c>.
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
    public void Struct_layouts_match_the_kernel_abi()
    {
        Assert.Equal(120, sizeof(IoUringInterop.io_uring_params));
        Assert.Equal(40, sizeof(IoUringInterop.io_sqring_offsets));
        Assert.Equal(40, sizeof(IoUringInterop.io_cqring_offsets));
        Assert.Equal(64, sizeof(IoUringInterop.io_uring_sqe));
        Assert.Equal(16, sizeof(IoUringInterop.io_uring_cqe));
        Assert.Equal(16, sizeof(Iovec));
        Assert.Equal(16, sizeof(IoUringCompletion));
        Assert.Equal(40, (int)Marshal.OffsetOf<IoUringInterop.io_uring_params>(nameof(IoUringInterop.io_uring_params.sq_off)));
        Assert.Equal(80, (int)Marshal.OffsetOf<IoUringInterop.io_uring_params>(nameof(IoUringInterop.io_uring_params.cq_off)));
        Assert.Equal(20, (int)Marshal.OffsetOf<IoUringInterop.io_uring_params>(nameof(IoUringInterop.io_uring_params.features)));
        Assert.Equal(32, (int)Marshal.OffsetOf<IoUringInterop.io_uring_sqe>(nameof(IoUringInterop.io_uring_sqe.user_data)));
        Assert.Equal(8, (int)Marshal.OffsetOf<IoUringInterop.io_uring_cqe>(nameof(IoUringInterop.io_uring_cqe.res)));
    }

    [Fact]
    public void Struct_layouts_and_constants_agree_with_linux_io_uring_h()
    {
        string? compiler = new[] { "cc", "gcc", "clang" }
            .SelectMany(n => (Environment.GetEnvironmentVariable("PATH") ?? "/usr/bin").Split(':').Select(d => Path.Combine(d, n)))
            .FirstOrDefault(File.Exists);
        if (compiler is null)
        {
            Assert.Skip("no C compiler (cc, gcc or clang) on PATH: the C cross-check needs one (./test.sh installs gcc)");
        }

        if (!File.Exists("/usr/include/linux/io_uring.h"))
        {
            Assert.Skip("no <linux/io_uring.h> (install linux-libc-dev)");
        }

        var c = new StringBuilder("#include <stddef.h>\n#include <fcntl.h>\n#include <linux/falloc.h>\n#include <linux/io_uring.h>\n#include <sys/uio.h>\n");
        void Check(string expression, long value) => c.Append("_Static_assert((").Append(expression).Append(") == ").Append(value).Append(", \"").Append(expression).Append("\");\n");
        void Struct<T>(string cName)
            where T : unmanaged
        {
            Check($"sizeof(struct {cName})", sizeof(T));
            foreach (var field in typeof(T).GetFields(System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.Instance))
            {
                if (field.Name is "pad2" or "resv" or "user_addr")
                {
                    // Unnamed padding in the header, or named differently across kernel versions (user_addr was resv2 before 6.5): sizeof covers them.
                    continue;
                }

                Check($"offsetof(struct {cName}, {field.Name})", (long)Marshal.OffsetOf<T>(field.Name));
            }
        }

        Struct<IoUringInterop.io_uring_params>("io_uring_params");
        Struct<IoUringInterop.io_sqring_offsets>("io_sqring_offsets");
        Struct<IoUringInterop.io_cqring_offsets>("io_cqring_offsets");
        Struct<IoUringInterop.io_uring_sqe>("io_uring_sqe");
        Struct<IoUringInterop.io_uring_cqe>("io_uring_cqe");
        Check("sizeof(struct iovec)", sizeof(Iovec));
        Check("offsetof(struct iovec, iov_len)", (long)Marshal.OffsetOf<Iovec>(nameof(Iovec.Length)));
        foreach (object v in Enum.GetValues<IoUringInterop.IoUringOpcode>().Cast<object>()
            .Concat(Enum.GetValues<IoUringInterop.IoUringSqeFlags>().Where(f => f != 0).Cast<object>())
            .Concat(Enum.GetValues<IoUringInterop.IoUringFeatures>().Cast<object>())
            .Concat(Enum.GetValues<IoUringInterop.IoUringEnterFlags>().Where(f => f != 0).Cast<object>())
            .Concat(Enum.GetValues<IoUringInterop.IoUringSqFlags>().Cast<object>())
            .Concat(Enum.GetValues<IoUringInterop.IoUringRegisterOpcode>().Cast<object>()))
        {
            Check(v.ToString()!, Convert.ToInt64(v, System.Globalization.CultureInfo.InvariantCulture));
        }

        Check("IORING_OFF_SQ_RING", IoUringInterop.IORING_OFF_SQ_RING);
        Check("IORING_OFF_CQ_RING", IoUringInterop.IORING_OFF_CQ_RING);
        Check("IORING_OFF_SQES", IoUringInterop.IORING_OFF_SQES);
        Check("IORING_FSYNC_DATASYNC", IoUringInterop.IORING_FSYNC_DATASYNC);
        Check("FALLOC_FL_KEEP_SIZE", (long)FallocateMode.KeepSize);
        Check("FALLOC_FL_PUNCH_HOLE", (long)FallocateMode.PunchHole);
        Check("FALLOC_FL_ZERO_RANGE", (long)FallocateMode.ZeroRange);
        if (RuntimeInformation.ProcessArchitecture == Architecture.X64)
        {
            c.Append("#include <asm/unistd.h>\n");
            Check("__NR_io_uring_setup", IoUringInterop.SYS_io_uring_setup);
            Check("__NR_io_uring_enter", IoUringInterop.SYS_io_uring_enter);
            Check("__NR_io_uring_register", IoUringInterop.SYS_io_uring_register);
        }

        string file = Path.Combine(Path.GetTempPath(), $"iouring-abi-{Guid.NewGuid():N}.c");
        File.WriteAllText(file, c.ToString());
        try
        {
            var info = new ProcessStartInfo(compiler) { RedirectStandardError = true, RedirectStandardOutput = true };
            foreach (string a in new[] { "-std=gnu11", "-fsyntax-only", file })
            {
                info.ArgumentList.Add(a);
            }

            using Process p = Process.Start(info)!;
            string output = p.StandardError.ReadToEnd() + p.StandardOutput.ReadToEnd();
            Assert.True(p.WaitForExit(60_000), "the compiler did not finish");
            Assert.True(p.ExitCode == 0, $"{compiler} rejected the io_uring ABI checks:\n{output}\n{c}");
        }
        finally
        {
            File.Delete(file);
        }
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
            Assert.Equal(Errno.None, c.Error);
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
                    results[c.UserData] = c.Error;
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

        int fds = TestHelpers.OpenFdCount();
        int maps = File.ReadAllLines("/proc/self/maps").Length;
        for (int i = 0; i < 50; i++)
        {
            using IoUring ring = IoUring.Create(64);
            ring.RegisterFiles([_file]);
            using EventFd e = new EventFd(EventFdFlags.NonBlocking);
            ring.RegisterEventFd(e);
        }

        Assert.Equal(fds, TestHelpers.OpenFdCount());
        Assert.InRange(File.ReadAllLines("/proc/self/maps").Length, 0, maps + 4);
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
        if (!IoUring.TryCreate(entries, out IoUring? ring, out Errno error))
        {
            Assert.Skip($"io_uring is not available here ({error}): kernel.io_uring_disabled, seccomp or an old kernel");
        }

        return ring!;
    }
}
