using System.Buffers.Binary;
using VhostUserBackend.Devices.Blk;
using VhostUserBackend.Tests.Virtio;
using VhostUserBackend.Virtio;

namespace VhostUserBackend.Tests.Devices;

/// <summary><see cref="VirtioBlkRequest"/>: parsing and checking requests over real descriptor chains, good and hostile, without allocating.</summary>
public sealed class VirtioBlkRequestTests
{
    private const ulong Header = QueueRig.RamBase + 0x200000;
    private const ulong Payload = Header + 0x1000;
    private const ulong Status = Header + 0x3000;
    private const ulong Capacity = 1000;

    public static TheoryData<bool> Rings => new() { false, true };

    private static QueueRig Create(bool packed) => packed ? QueueRig.CreatePacked(16) : QueueRig.CreateSplit(16);

    private static DescriptorChain Pop(QueueRig rig)
    {
        Assert.True(rig.Device.TryPopDescriptorChain(out DescriptorChain chain));
        return chain;
    }

    private static void WriteHeader(QueueRig rig, VirtioBlkRequestType type, ulong sector)
    {
        var h = new byte[16];
        BinaryPrimitives.WriteUInt32LittleEndian(h, (uint)type);
        BinaryPrimitives.WriteUInt64LittleEndian(h.AsSpan(8), sector);
        rig.Ram.Write(Header, h);
    }

    private static void WriteSegment(QueueRig rig, ulong at, ulong sector, uint sectors, uint flags)
    {
        var s = new byte[16];
        BinaryPrimitives.WriteUInt64LittleEndian(s, sector);
        BinaryPrimitives.WriteUInt32LittleEndian(s.AsSpan(8), sectors);
        BinaryPrimitives.WriteUInt32LittleEndian(s.AsSpan(12), flags);
        rig.Ram.Write(at, s);
    }

    [Theory]
    [MemberData(nameof(Rings))]
    public void Read_request_parses_header_data_and_status(bool packed)
    {
        using QueueRig rig = Create(packed);
        WriteHeader(rig, VirtioBlkRequestType.In, 7);
        rig.Add([new(Header, 16, false), new(Payload, 1024, true), new(Status, 1, true)]);

        Assert.Equal(VirtioBlkRequestError.None, VirtioBlkRequest.Parse(Pop(rig), out VirtioBlkRequest r));
        Assert.Equal(VirtioBlkRequestType.In, r.Type);
        Assert.Equal(7UL, r.Sector);
        Assert.Equal(1024UL, r.DataInLength);
        Assert.Equal(0UL, r.DataOutLength);
        Assert.Equal(1025U, r.UsedLength);
        Assert.True(r.HasStatus);
        Assert.Equal(VirtioBlkRequestError.None, r.CheckTransfer(Capacity));

        r.Writer.WriteExactly(new byte[1024]);
        Assert.True(r.TryWriteStatus(VirtioBlkStatus.Ok));
        Assert.Equal((byte)VirtioBlkStatus.Ok, rig.Ram.GetSpan(Status, 1)[0]);
    }

    [Theory]
    [MemberData(nameof(Rings))]
    public void Header_data_and_status_may_share_descriptors(bool packed)
    {
        // ANY_LAYOUT: header and OUT data in one buffer, status alone; the status is the last writable byte.
        using QueueRig rig = Create(packed);
        WriteHeader(rig, VirtioBlkRequestType.Out, 3);
        rig.Add([new(Header, 16 + 512, false), new(Status, 4, true)]);

        Assert.Equal(VirtioBlkRequestError.None, VirtioBlkRequest.Parse(Pop(rig), out VirtioBlkRequest r));
        Assert.Equal(512UL, r.DataOutLength);
        Assert.Equal(3UL, r.DataInLength);
        Assert.Equal(512UL, r.Data.Remaining);
        Assert.True(r.TryWriteStatus(VirtioBlkStatus.IoError));
        Assert.Equal((byte)VirtioBlkStatus.IoError, rig.Ram.GetSpan(Status + 3, 1)[0]);
        Assert.Equal(4U, r.UsedLength);
    }

    [Theory]
    [MemberData(nameof(Rings))]
    public void Chain_without_a_writable_byte_has_no_status(bool packed)
    {
        using QueueRig rig = Create(packed);
        WriteHeader(rig, VirtioBlkRequestType.In, 0);
        rig.Add([new(Header, 16, false), new(Payload, 512, false)]);

        Assert.Equal(VirtioBlkRequestError.NoStatusByte, VirtioBlkRequest.Parse(Pop(rig), out VirtioBlkRequest r));
        Assert.False(r.HasStatus);
        Assert.Equal(0U, r.UsedLength);
        Assert.False(r.TryWriteStatus(VirtioBlkStatus.IoError));
        Assert.Equal(VirtioBlkStatus.IoError, VirtioBlkRequest.ToStatus(VirtioBlkRequestError.NoStatusByte));
    }

    [Theory]
    [MemberData(nameof(Rings))]
    public void Short_header_is_answered_ioerr_through_its_status_byte(bool packed)
    {
        using QueueRig rig = Create(packed);
        rig.Add([new(Header, 8, false), new(Status, 1, true)]);

        Assert.Equal(VirtioBlkRequestError.HeaderTooShort, VirtioBlkRequest.Parse(Pop(rig), out VirtioBlkRequest r));
        Assert.True(r.HasStatus);
        Assert.Equal(VirtioBlkStatus.IoError, VirtioBlkRequest.ToStatus(VirtioBlkRequestError.HeaderTooShort));
        Assert.True(r.TryWriteStatus(VirtioBlkStatus.IoError));
        Assert.Equal((byte)VirtioBlkStatus.IoError, rig.Ram.GetSpan(Status, 1)[0]);
    }

    [Theory]
    [MemberData(nameof(Rings))]
    public void Header_in_a_writable_buffer_is_too_short(bool packed)
    {
        // Wrong direction: the driver put the header where the device writes.
        using QueueRig rig = Create(packed);
        WriteHeader(rig, VirtioBlkRequestType.In, 0);
        rig.Add([new(Header, 16, true), new(Status, 1, true)]);

        Assert.Equal(VirtioBlkRequestError.HeaderTooShort, VirtioBlkRequest.Parse(Pop(rig), out VirtioBlkRequest r));
        Assert.Equal(17U, r.UsedLength);
    }

    [Theory]
    [MemberData(nameof(Rings))]
    public void Invalid_chain_throws_the_virtqueue_error(bool packed)
    {
        using QueueRig rig = Create(packed);
        rig.Add([new(Header, 16, false), new(0xdead_0000_0000, 1, true)]);

        VirtqueueException e = Assert.Throws<VirtqueueException>(() => VirtioBlkRequest.Parse(Pop(rig), out _));
        Assert.Equal(VirtqueueError.BufferNotMapped, e.Reason);
    }

    [Fact]
    public void Default_chain_is_refused()
        => Assert.Throws<InvalidOperationException>(() => VirtioBlkRequest.Parse(default, out _));

    [Theory]
    [InlineData(0UL, 512UL, VirtioBlkRequestError.None)]
    [InlineData(999UL, 512UL, VirtioBlkRequestError.None)]
    [InlineData(1000UL, 0UL, VirtioBlkRequestError.None)]
    [InlineData(1000UL, 512UL, VirtioBlkRequestError.OutOfRange)]
    [InlineData(999UL, 1024UL, VirtioBlkRequestError.OutOfRange)]
    [InlineData(1001UL, 0UL, VirtioBlkRequestError.OutOfRange)]
    [InlineData(ulong.MaxValue, 512UL, VirtioBlkRequestError.OutOfRange)]
    [InlineData(1UL, ulong.MaxValue - 511, VirtioBlkRequestError.OutOfRange)]
    [InlineData(0UL, 1000UL, VirtioBlkRequestError.NotWholeSectors)]
    public void Range_checks_whole_sectors_inside_the_disk_without_overflow(ulong sector, ulong bytes, VirtioBlkRequestError expected)
        => Assert.Equal(expected, VirtioBlkRequest.CheckRange(sector, bytes, Capacity));

    [Theory]
    [MemberData(nameof(Rings))]
    public void Transfer_past_the_end_is_out_of_range(bool packed)
    {
        using QueueRig rig = Create(packed);
        WriteHeader(rig, VirtioBlkRequestType.Out, ulong.MaxValue);
        rig.Add([new(Header, 16, false), new(Payload, 512, false), new(Status, 1, true)]);

        Assert.Equal(VirtioBlkRequestError.None, VirtioBlkRequest.Parse(Pop(rig), out VirtioBlkRequest r));
        Assert.Equal(VirtioBlkRequestError.OutOfRange, r.CheckTransfer(Capacity));
        Assert.Equal(VirtioBlkStatus.IoError, VirtioBlkRequest.ToStatus(r.CheckTransfer(Capacity)));
    }

    [Theory]
    [MemberData(nameof(Rings))]
    public void Segments_are_counted_read_and_checked(bool packed)
    {
        using QueueRig rig = Create(packed);
        WriteHeader(rig, VirtioBlkRequestType.WriteZeroes, 0);
        WriteSegment(rig, Payload, 10, 8, (uint)VirtioBlkDiscardFlags.Unmap);
        WriteSegment(rig, Payload + 16, 995, 8, 0);
        WriteSegment(rig, Payload + 32, 0, 100, 0);
        WriteSegment(rig, Payload + 48, 0, 1, 4);
        rig.Add([new(Header, 16, false), new(Payload, 64, false), new(Status, 1, true)]);

        Assert.Equal(VirtioBlkRequestError.None, VirtioBlkRequest.Parse(Pop(rig), out VirtioBlkRequest r));
        Assert.Equal(VirtioBlkRequestError.BadSegmentCount, r.GetSegmentCount(3, out int count));
        Assert.Equal(0, count);
        Assert.Equal(VirtioBlkRequestError.None, r.GetSegmentCount(4, out count));
        Assert.Equal(4, count);

        Assert.Equal(VirtioBlkRequestError.None, r.ReadSegment(64, Capacity, out VirtioBlkDiscardWriteZeroes s));
        Assert.Equal((10UL, 8U, VirtioBlkDiscardFlags.Unmap), (s.Sector, s.NumSectors, s.Flags));
        Assert.Equal(VirtioBlkRequestError.OutOfRange, r.ReadSegment(64, Capacity, out s));
        Assert.Equal(VirtioBlkRequestError.TooManySectors, r.ReadSegment(64, Capacity, out s));
        Assert.Equal(VirtioBlkRequestError.UnsupportedFlags, r.ReadSegment(64, Capacity, out s));
        Assert.Equal(VirtioBlkStatus.Unsupported, VirtioBlkRequest.ToStatus(VirtioBlkRequestError.UnsupportedFlags));
        Assert.Equal(VirtioBlkRequestError.BadSegmentCount, r.ReadSegment(64, Capacity, out _));
    }

    [Theory]
    [MemberData(nameof(Rings))]
    public void Discard_with_unmap_is_unsupported(bool packed)
    {
        using QueueRig rig = Create(packed);
        WriteHeader(rig, VirtioBlkRequestType.Discard, 0);
        WriteSegment(rig, Payload, 10, 8, (uint)VirtioBlkDiscardFlags.Unmap);
        rig.Add([new(Header, 16, false), new(Payload, 16, false), new(Status, 1, true)]);

        Assert.Equal(VirtioBlkRequestError.None, VirtioBlkRequest.Parse(Pop(rig), out VirtioBlkRequest r));
        Assert.Equal(VirtioBlkRequestError.UnsupportedFlags, r.ReadSegment(64, Capacity, out _));
    }

    [Theory]
    [InlineData(0UL)]
    [InlineData(15UL)]
    [InlineData(17UL)]
    public void Payload_that_is_not_whole_segments_is_refused(ulong payload)
    {
        using QueueRig rig = Create(false);
        WriteHeader(rig, VirtioBlkRequestType.Discard, 0);
        rig.Add(payload == 0 ? [new(Header, 16, false), new(Status, 1, true)] : [new(Header, 16, false), new(Payload, (uint)payload, false), new(Status, 1, true)]);

        Assert.Equal(VirtioBlkRequestError.None, VirtioBlkRequest.Parse(Pop(rig), out VirtioBlkRequest r));
        Assert.Equal(VirtioBlkRequestError.BadSegmentCount, r.GetSegmentCount(8, out _));
    }

    [Fact]
    public void Every_error_has_a_sentence_and_a_status()
    {
        foreach (VirtioBlkRequestError e in Enum.GetValues<VirtioBlkRequestError>())
        {
            Assert.NotEqual("unknown error", VirtioBlkRequest.Describe(e));
            Assert.Equal(e == VirtioBlkRequestError.None, VirtioBlkRequest.ToStatus(e) == VirtioBlkStatus.Ok);
        }
    }

    [Theory]
    [MemberData(nameof(Rings))]
    public void Parse_check_and_status_allocate_nothing(bool packed)
    {
        using QueueRig rig = Create(packed);
        WriteHeader(rig, VirtioBlkRequestType.In, 7);
        Cycle(rig);
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 200; i++)
        {
            Cycle(rig);
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    private static void Cycle(QueueRig rig)
    {
        rig.Add([new(Header, 16, false), new(Payload, 512, true), new(Status, 1, true)]);
        Assert.True(rig.Device.TryPopDescriptorChain(out DescriptorChain chain));
        VirtioBlkRequestError error = VirtioBlkRequest.Parse(chain, out VirtioBlkRequest r);
        if (error != VirtioBlkRequestError.None || r.CheckTransfer(Capacity) != VirtioBlkRequestError.None || !r.TryWriteStatus(VirtioBlkStatus.Ok))
        {
            throw new InvalidOperationException(VirtioBlkRequest.Describe(error));
        }

        rig.Device.AddUsed(chain.Head, r.UsedLength);
        while (rig.TryGetUsed(out _, out _))
        {
        }
    }
}
