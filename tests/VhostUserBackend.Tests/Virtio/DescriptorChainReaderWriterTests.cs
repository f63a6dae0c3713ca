using System.Buffers.Binary;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using VhostUserBackend.Memory;
using VhostUserBackend.Testing;
using VhostUserBackend.Virtio;

namespace VhostUserBackend.Tests.Virtio;

/// <summary><see cref="DescriptorChainReader"/> and <see cref="DescriptorChainWriter"/>: bytes across buffers and regions, iovecs, dirty logging, hostile chains, no allocation.</summary>
public sealed unsafe class DescriptorChainReaderWriterTests
{
    private const ulong Data = QueueRig.RamBase + 0x200000;

    public static TheoryData<bool, bool> Rings => new() { { false, false }, { false, true }, { true, false }, { true, true } };

    private static QueueRig Create(bool packed, ushort size = 16, GuestRam? ram = null, DirtyLog? log = null)
        => packed ? QueueRig.CreatePacked(size, maxIndirect: 32, ram: ram, log: log) : QueueRig.CreateSplit(size, maxIndirect: 32, ram: ram, log: log);

    private static DescriptorChain Pop(QueueRig rig)
    {
        Assert.True(rig.Device.TryPopDescriptorChain(out DescriptorChain chain));
        return chain;
    }

    [Theory]
    [MemberData(nameof(Rings))]
    public void ReadsAndWrites_AcrossBufferBoundaries_SkippingEmptyBuffers(bool packed, bool indirect)
    {
        using QueueRig rig = Create(packed);
        rig.Ram.Write(Data, [1, 2, 3]);
        rig.Ram.Write(Data + 0x200, [4, 5, 6, 7, 8, 9]);
        rig.Add([new(Data, 3, false), new(Data + 0x100, 0, false), new(Data + 0x200, 6, false), new(Data + 0x1000, 3, true), new(Data + 0x1100, 0, true), new(Data + 0x2000, 7, true)], indirect);
        DescriptorChain chain = Pop(rig);

        DescriptorChainReader reader = chain.CreateReader();
        Assert.Equal(9UL, reader.Remaining);
        Assert.Equal(0x0807060504030201UL, reader.Read<ulong>());
        Assert.Equal(1UL, reader.Remaining);
        Assert.Equal(8UL, reader.BytesRead);
        byte[] rest = new byte[4];
        Assert.Equal(1, reader.Read(rest));
        Assert.Equal(9, rest[0]);
        Assert.Equal(0, reader.Read(rest));
        Assert.False(reader.TryGetSpan(out _));

        DescriptorChainWriter writer = chain.CreateWriter();
        Assert.Equal(10UL, writer.Remaining);
        writer.Write(0x44332211U);
        Assert.Equal(6, writer.Write("abcdefgh"u8));
        Assert.Equal(10U, writer.BytesWritten);
        Assert.Equal(0UL, writer.Remaining);
        Assert.Equal(new byte[] { 0x11, 0x22, 0x33 }, rig.Ram.GetSpan(Data + 0x1000, 3).ToArray());
        Assert.Equal(new byte[] { 0x44, (byte)'a', (byte)'b', (byte)'c', (byte)'d', (byte)'e', (byte)'f' }, rig.Ram.GetSpan(Data + 0x2000, 7).ToArray());
        Assert.Equal(chain.Head, writer.Chain.Head);
    }

    [Theory]
    [MemberData(nameof(Rings))]
    public void LongChains_PastTheCachedBuffers_AreWalkedAgain(bool packed, bool indirect)
    {
        using QueueRig rig = Create(packed, size: 32);
        var buffers = new List<VirtqBuffer>();
        byte[] expected = new byte[70];
        for (int i = 0; i < 10; i++)
        {
            ulong a = Data + ((ulong)i * 0x100);
            byte[] bytes = Enumerable.Range(i * 7, 7).Select(x => (byte)x).ToArray();
            rig.Ram.Write(a, bytes);
            bytes.CopyTo(expected, i * 7);
            buffers.Add(new(a, 7, false));
        }

        for (int i = 0; i < 9; i++)
        {
            buffers.Add(new(Data + 0x10000 + ((ulong)i * 0x100), 5, true));
        }

        rig.Add(buffers.ToArray(), indirect);
        DescriptorChain chain = Pop(rig);
        DescriptorChainReader reader = chain.CreateReader();
        Assert.Equal(70UL, reader.Remaining);
        byte[] got = new byte[70];
        reader.Skip(3);
        reader.ReadExactly(got.AsSpan(3));
        Assert.Equal(expected[3..], got[3..]);

        DescriptorChainWriter writer = chain.CreateWriter();
        Assert.Equal(45UL, writer.Remaining);
        byte[] data = Enumerable.Range(100, 45).Select(x => (byte)x).ToArray();
        writer.WriteExactly(data);
        for (int i = 0; i < 9; i++)
        {
            Assert.Equal(data.AsSpan(i * 5, 5).ToArray(), rig.Ram.GetSpan(Data + 0x10000 + ((ulong)i * 0x100), 5).ToArray());
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void BufferAcrossTwoAdjacentRegions_IsSplitIntoTwoPieces(bool packed)
    {
        using var ram = GuestRam.Create([(QueueRig.RamBase, 0x300000), (QueueRig.RamBase + 0x300000, 0x100000)]);
        using QueueRig rig = Create(packed, ram: ram);
        ulong edge = QueueRig.RamBase + 0x300000;
        ram.Write(edge - 4, "abcd"u8);
        ram.Write(edge, "efgh"u8);
        rig.Add([new(edge - 4, 8, false), new(edge - 0x10, 0x20, true)]);
        DescriptorChain chain = Pop(rig);

        DescriptorChainReader reader = chain.CreateReader();
        Assert.True(reader.TryGetSpan(out ReadOnlySpan<byte> first));
        Assert.Equal("abcd"u8.ToArray(), first.ToArray());
        Span<Iovec> iov = stackalloc Iovec[4];
        int n = reader.GetIovecs(iov, ulong.MaxValue, out ulong bytes);
        Assert.Equal(8UL, bytes);
        Assert.InRange(n, 1, 2); // two pieces, unless the kernel happened to map the regions side by side
        Assert.Equal("abcdefgh"u8.ToArray(), Gather(iov[..n]));
        Assert.Equal(8UL, reader.Remaining); // nothing consumed
        Assert.Equal("abcdefgh"u8.ToArray(), BitConverter.GetBytes(reader.Read<ulong>()));

        DescriptorChainWriter writer = chain.CreateWriter();
        Assert.True(writer.TryGetSpan(out Span<byte> head));
        Assert.Equal(0x10, head.Length);
        writer.WriteExactly(new byte[0x20]);
        Assert.Equal(0x20U, writer.BytesWritten);
    }

    [Theory]
    [MemberData(nameof(Rings))]
    public void Iovecs_AreBoundedByEntriesAndBytes_AndConsumedExplicitly(bool packed, bool indirect)
    {
        using QueueRig rig = Create(packed);
        rig.Add([new(Data, 10, false), new(Data + 0x100, 10, false), new(Data + 0x200, 10, false), new(Data + 0x1000, 16, true), new(Data + 0x2000, 16, true)], indirect);
        rig.Ram.Write(Data + 0x100, "0123456789"u8);
        DescriptorChain chain = Pop(rig);
        DescriptorChainReader reader = chain.CreateReader();
        Span<Iovec> iov = stackalloc Iovec[2];

        Assert.Equal(2, reader.GetIovecs(iov, ulong.MaxValue, out ulong bytes));
        Assert.Equal(20UL, bytes);
        Assert.Equal(1, reader.GetIovecs(iov, 4, out bytes));
        Assert.Equal(4UL, bytes);
        Assert.Equal(0, reader.GetIovecs(iov[..0], 4, out bytes));
        reader.Skip(15);
        Assert.Equal(2, reader.GetIovecs(iov, 8, out bytes));
        Assert.Equal(8UL, bytes);
        Assert.Equal((nuint)5, iov[0].Length);
        Assert.Equal("56789"u8.ToArray(), Gather(iov[..1]));

        DescriptorChainWriter writer = chain.CreateWriter();
        Assert.Equal(2, writer.GetIovecs(iov, 20, out bytes));
        Assert.Equal(20UL, bytes);
        Assert.Equal((nuint)16, iov[0].Length);
        Assert.Equal((nuint)4, iov[1].Length);
        new Span<byte>((void*)iov[0].Base, 16).Fill(7);
        new Span<byte>((void*)iov[1].Base, 4).Fill(8);
        writer.Commit(bytes);
        Assert.Equal(20U, writer.BytesWritten);
        Assert.Equal(12UL, writer.Remaining);
        Assert.Throws<ArgumentOutOfRangeException>(() => writer.Commit(13));
    }

    [Fact]
    public void AdjacentBuffers_ShareOneIovec()
    {
        using QueueRig rig = Create(false);
        rig.Add([new(Data, 10, true), new(Data + 10, 6, true)]);
        DescriptorChainWriter writer = Pop(rig).CreateWriter();
        Span<Iovec> iov = stackalloc Iovec[2];
        Assert.Equal(1, writer.GetIovecs(iov, ulong.MaxValue, out ulong bytes));
        Assert.Equal(16UL, bytes);
        Assert.Equal((nuint)16, iov[0].Length);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Writer_MarksExactlyTheWrittenPages(bool packed)
    {
        using var ram = GuestRam.Create(QueueRig.RamSize, QueueRig.RamBase);
        using SafeFileHandle logFd = TestHelpers.MemFd(4096);
        using var log = DirtyLog.Map(logFd, 0, 4096);
        using QueueRig rig = Create(packed, ram: ram, log: log);

        // Buffers: a readable one (never marked), one across a page boundary, one of two pages whose
        // first page is skipped, one written in place through a span and committed, one left alone.
        rig.Add([new(Data + 0x8000, 64, false), new(Data + 0xFFE, 4, true), new(Data + 0x5000, 0x2000, true), new(Data + 0x9000, 0x100, true), new(Data + 0xA000, 0x100, true)]);
        DescriptorChain chain = Pop(rig);
        DescriptorChainReader reader = chain.CreateReader();
        reader.Skip(10);
        _ = reader.Read<int>();
        DescriptorChainWriter writer = chain.CreateWriter();
        writer.Write(0x01020304U);
        writer.Skip(0x1000);
        writer.Write((byte)1);
        writer.Skip(0xFFF);
        Assert.True(writer.TryGetSpan(out Span<byte> span));
        Assert.Equal(0x100, span.Length);
        span[..8].Fill(3);
        writer.Commit(8);
        Assert.Equal((uint)(4 + 0x2000 + 8), writer.BytesWritten);

        ulong[] expected = [(Data + 0xFFE) / DirtyLog.PageSize, (Data + 0x1000) / DirtyLog.PageSize, (Data + 0x6000) / DirtyLog.PageSize, (Data + 0x9000) / DirtyLog.PageSize];
        for (ulong page = 0; page < log.PageCount; page++)
        {
            Assert.True(expected.Contains(page) == log.IsDirty(page), $"page 0x{page:x}");
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ReadableAfterWritable_IsRejectedAtCreation(bool packed)
    {
        using QueueRig rig = Create(packed);
        rig.Add([new(Data, 4, true), new(Data + 0x100, 4, false)]);
        DescriptorChain chain = Pop(rig);
        Assert.Equal(VirtqueueError.ReadableAfterWritable, Assert.Throws<VirtqueueException>(() => chain.CreateReader()).Reason);
        Assert.Equal(VirtqueueError.ReadableAfterWritable, Assert.Throws<VirtqueueException>(() => chain.CreateWriter()).Reason);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void UnmappedBuffer_IsRejectedAtCreation(bool packed)
    {
        using QueueRig rig = Create(packed);
        rig.Add([new(Data, 4, false), new(QueueRig.RamBase + QueueRig.RamSize - 2, 4, true)]);
        DescriptorChain chain = Pop(rig);
        Assert.Equal(VirtqueueError.BufferNotMapped, Assert.Throws<VirtqueueException>(() => chain.CreateReader()).Reason);
        Assert.Equal(VirtqueueError.BufferNotMapped, Assert.Throws<VirtqueueException>(() => chain.CreateWriter()).Reason);
    }

    [Fact]
    public void LoopingChain_IsRejectedAtCreation()
    {
        using QueueRig rig = QueueRig.CreateSplit(8);
        rig.Split!.WriteDescriptor(0, new VirtqDescriptor { Address = Data, Length = 1, Flags = VirtqDescriptorFlags.Next, Next = 1 });
        rig.Split.WriteDescriptor(1, new VirtqDescriptor { Address = Data, Length = 1, Flags = VirtqDescriptorFlags.Next, Next = 0 });
        rig.Split.WriteAvailEntry(0, 0);
        rig.Split.SetAvailIndex(1);
        DescriptorChain chain = Pop(rig);
        Assert.Equal(VirtqueueError.DescriptorLoop, Assert.Throws<VirtqueueException>(() => chain.CreateReader()).Reason);
        Assert.Equal(VirtqueueError.DescriptorLoop, Assert.Throws<VirtqueueException>(() => chain.CreateWriter()).Reason);
    }

    [Fact]
    public void MoreBuffersThanTheQueueSize_AreRejectedAtCreation()
    {
        // (A packed driver cannot post more than the queue size; the packed ring's bound is tested with the queue.)
        using QueueRig rig = QueueRig.CreateSplit(256, maxIndirect: 300);
        ulong table = rig.Ram.Allocate(257 * 16, 16);
        for (int i = 0; i < 257; i++)
        {
            var d = new VirtqDescriptor { Address = Data, Length = 1, Flags = VirtqDescriptorFlags.Write | (i < 256 ? VirtqDescriptorFlags.Next : 0), Next = (ushort)(i + 1) };
            rig.Ram.Write(table + ((ulong)i * 16), MemoryMarshal.AsBytes(new ReadOnlySpan<VirtqDescriptor>(in d)));
        }

        rig.Split!.WriteDescriptor(0, new VirtqDescriptor { Address = table, Length = 257 * 16, Flags = VirtqDescriptorFlags.Indirect });
        rig.Split.WriteAvailEntry(0, 0);
        rig.Split.SetAvailIndex(1);
        DescriptorChain chain = Pop(rig);
        Assert.Equal(VirtqueueError.ChainTooLong, Assert.Throws<VirtqueueException>(() => chain.CreateWriter()).Reason);
    }

    [Fact]
    public void WritableBuffersPast4GiB_AreAnOverflow_ReadableOnesAreCounted()
    {
        // 1025 buffers of 4 MiB (the whole RAM, over and over) in one indirect table.
        using QueueRig rig = QueueRig.CreateSplit(2048, maxIndirect: 1);
        foreach (bool writable in new[] { true, false })
        {
            ulong table = rig.Ram.Allocate(1025 * 16, 16);
            for (int i = 0; i < 1025; i++)
            {
                var d = new VirtqDescriptor { Address = QueueRig.RamBase, Length = (uint)QueueRig.RamSize, Flags = (writable ? VirtqDescriptorFlags.Write : 0) | (i < 1024 ? VirtqDescriptorFlags.Next : 0), Next = (ushort)(i + 1) };
                rig.Ram.Write(table + ((ulong)i * 16), MemoryMarshal.AsBytes(new ReadOnlySpan<VirtqDescriptor>(in d)));
            }

            ushort slot = rig.Split!.AvailIndex;
            rig.Split.WriteDescriptor(slot, new VirtqDescriptor { Address = table, Length = 1025 * 16, Flags = VirtqDescriptorFlags.Indirect });
            rig.Split.WriteAvailEntry(slot, slot);
            rig.Split.SetAvailIndex((ushort)(slot + 1));
            DescriptorChain chain = Pop(rig);
            if (writable)
            {
                Assert.Equal(VirtqueueError.ChainLengthOverflow, Assert.Throws<VirtqueueException>(() => chain.CreateWriter()).Reason);
                Assert.Equal(0UL, chain.CreateReader().Remaining);
            }
            else
            {
                Assert.Equal(1025UL * QueueRig.RamSize, chain.CreateReader().Remaining);
                Assert.Equal(0UL, chain.CreateWriter().Remaining);
            }

            rig.Device.AddUsed(chain.Head, 0);
        }
    }

    [Fact]
    public void ShortChain_ThrowsChainTooShort_AndConsumesNothing()
    {
        using QueueRig rig = Create(false);
        rig.Add([new(Data, 4, false), new(Data + 0x100, 4, true)]);
        DescriptorChain chain = Pop(rig);
        DescriptorChainReader reader = chain.CreateReader();
        Assert.Equal(VirtqueueError.ChainTooShort, Assert.Throws<VirtqueueException>(() => reader.Read<ulong>()).Reason);
        Assert.Equal(VirtqueueError.ChainTooShort, Assert.Throws<VirtqueueException>(() => reader.Skip(5)).Reason);
        Assert.Equal(4UL, reader.Remaining);
        DescriptorChainWriter writer = chain.CreateWriter();
        Assert.Equal(VirtqueueError.ChainTooShort, Assert.Throws<VirtqueueException>(() => writer.Write(0UL)).Reason);
        Assert.Equal(VirtqueueError.ChainTooShort, Assert.Throws<VirtqueueException>(() => writer.WriteExactly(new byte[5])).Reason);
        Assert.Equal(0U, writer.BytesWritten);
        Assert.Equal(4, writer.Write(new byte[5]));
    }

    [Fact]
    public void ChainRewrittenInFlight_ThrowsChainChanged_OnTheSecondWalk()
    {
        using QueueRig rig = QueueRig.CreateSplit(8);
        for (ushort i = 0; i < 6; i++)
        {
            rig.Split!.WriteDescriptor(i, new VirtqDescriptor { Address = Data + (i * 0x10UL), Length = 4, Flags = i < 5 ? VirtqDescriptorFlags.Next : 0, Next = (ushort)(i + 1) });
        }

        rig.Split!.WriteAvailEntry(0, 0);
        rig.Split.SetAvailIndex(1);
        DescriptorChainReader reader = Pop(rig).CreateReader();
        Assert.Equal(24UL, reader.Remaining);
        rig.Split.WriteDescriptor(4, new VirtqDescriptor { Address = Data + 0x40, Length = 4 });
        byte[] all = new byte[24];
        Assert.Equal(VirtqueueError.ChainChanged, Assert.Throws<VirtqueueException>(() => reader.Read(all)).Reason);
    }

    [Fact]
    public void DefaultReaderAndWriter_AreEmpty()
    {
        DescriptorChainReader reader = default;
        DescriptorChainWriter writer = default;
        Assert.Equal(0UL, reader.Remaining);
        Assert.Equal(0, reader.Read(new byte[4]));
        Assert.Equal(0, writer.Write(new byte[4]));
        Assert.False(writer.TryGetSpan(out _));
        Assert.Throws<InvalidOperationException>(() => default(DescriptorChain).CreateReader());
    }

    [Theory]
    [MemberData(nameof(Rings))]
    public void ReadWriteSpanAndIovecPaths_AllocateNothing(bool packed, bool indirect)
    {
        using QueueRig rig = Create(packed, size: 64);
        VirtqBuffer[] buffers = [new(Data, 6, false), new(Data + 0x100, 10, false), new(Data + 0x1000, 8, true), new(Data + 0x2000, 8, true)];
        byte[] scratch = new byte[16];
        Iovec[] iov = new Iovec[4];
        Cycle(rig, buffers, indirect, scratch, iov);
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 1000; i++)
        {
            Cycle(rig, buffers, indirect, scratch, iov);
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    private static void Cycle(QueueRig rig, VirtqBuffer[] buffers, bool indirect, byte[] scratch, Iovec[] iov)
    {
        for (int i = 0; i < 8; i++)
        {
            rig.Add(buffers, indirect);
        }

        while (rig.Device.TryPopDescriptorChain(out DescriptorChain chain))
        {
            DescriptorChainReader reader = chain.CreateReader();
            reader.GetIovecs(iov, ulong.MaxValue, out _);
            _ = reader.Read<uint>();
            reader.TryGetSpan(out _);
            reader.Read(scratch);
            DescriptorChainWriter writer = chain.CreateWriter();
            writer.Write(0x1234U);
            writer.GetIovecs(iov, 8, out ulong bytes);
            writer.Commit(bytes);
            writer.TryGetSpan(out Span<byte> span);
            writer.Commit((ulong)span.Length);
            rig.Device.AddUsed(chain.Head, writer.BytesWritten);
        }

        while (rig.TryGetUsed(out _, out _))
        {
        }
    }

    private static byte[] Gather(ReadOnlySpan<Iovec> iov)
    {
        var bytes = new List<byte>();
        foreach (Iovec v in iov)
        {
            bytes.AddRange(new ReadOnlySpan<byte>((void*)v.Base, (int)v.Length));
        }

        return [.. bytes];
    }
}
