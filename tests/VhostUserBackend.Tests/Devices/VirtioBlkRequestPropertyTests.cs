using System.Buffers.Binary;
using CsCheck;
using VhostUserBackend.Devices.Blk;
using VhostUserBackend.Tests.Virtio;
using VhostUserBackend.Virtio;

namespace VhostUserBackend.Tests.Devices;

/// <summary>
/// <see cref="VirtioBlkRequest"/> over random chains a driver might post (any split of readable
/// and writable bytes over 1 to 6 buffers, any header and segment contents): parsing agrees with
/// the chain's shape, every check answers with an error instead of throwing, and the status byte
/// lands in the last writable byte.
/// </summary>
public sealed class VirtioBlkRequestPropertyTests
{
    private const ulong Data = QueueRig.RamBase + 0x200000;

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Random_chains_parse_consistently_and_never_throw(bool packed)
    {
        Gen<uint[]> lengths = Gen.UInt[0, 64].Array[1, 6];
        Gen.Select(lengths, Gen.Int[0, 6], Gen.ULong, Gen.UInt, Gen.ULong, Gen.UInt, Gen.UInt)
            .Sample(t => Check(packed, t.Item1, t.Item2, (VirtioBlkRequestType)(t.Item4 % 16), t.Item3, t.Item5, t.Item6, t.Item7), iter: 300, threads: 1);
    }

    private static void Check(bool packed, uint[] lengths, int firstWritable, VirtioBlkRequestType type, ulong sector, ulong segmentSector, uint segmentSectors, uint flags)
    {
        using QueueRig rig = packed ? QueueRig.CreatePacked(16) : QueueRig.CreateSplit(16);
        var bytes = new byte[64 * 6];
        BinaryPrimitives.WriteUInt32LittleEndian(bytes, (uint)type);
        BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(8), sector);
        BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(16), segmentSector);
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(24), segmentSectors);
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(28), flags);

        var buffers = new VirtqBuffer[lengths.Length];
        ulong readable = 0, writable = 0, at = Data;
        int readBytes = 0;
        for (int i = 0; i < lengths.Length; i++)
        {
            bool write = i >= firstWritable;
            buffers[i] = new VirtqBuffer(at, lengths[i], write);
            if (write)
            {
                rig.Ram.Write(at, new byte[lengths[i]].AsSpan().ToArray());
                writable += lengths[i];
            }
            else
            {
                rig.Ram.Write(at, bytes.AsSpan(readBytes, (int)lengths[i]).ToArray());
                readBytes += (int)lengths[i];
                readable += lengths[i];
            }

            at += 0x100;
        }

        rig.Add(buffers);
        Assert.True(rig.Device.TryPopDescriptorChain(out DescriptorChain chain));
        VirtioBlkRequestError error = VirtioBlkRequest.Parse(chain, out VirtioBlkRequest r);
        if (writable == 0)
        {
            Assert.Equal(VirtioBlkRequestError.NoStatusByte, error);
            Assert.False(r.TryWriteStatus(VirtioBlkStatus.Ok));
            return;
        }

        Assert.Equal((uint)writable, r.UsedLength);
        if (readable < VirtioBlkRequestHeader.Size)
        {
            Assert.Equal(VirtioBlkRequestError.HeaderTooShort, error);
        }
        else
        {
            Assert.Equal(VirtioBlkRequestError.None, error);
            Assert.Equal((type, sector), (r.Type, r.Sector));
            Assert.Equal((readable - 16, writable - 1), (r.DataOutLength, r.DataInLength));
            VirtioBlkRequestError transfer = r.CheckTransfer(capacity: 1 << 20);
            ulong bytesMoved = type == VirtioBlkRequestType.Out ? r.DataOutLength : r.DataInLength;
            if (transfer == VirtioBlkRequestError.None && type is VirtioBlkRequestType.In or VirtioBlkRequestType.Out)
            {
                Assert.True(bytesMoved % 512 == 0 && sector <= (1 << 20) && sector + (bytesMoved / 512) <= (1 << 20));
            }

            if (r.GetSegmentCount(4, out int count) == VirtioBlkRequestError.None)
            {
                Assert.Equal((int)(r.DataOutLength / 16), count);
                VirtioBlkRequestError segment = r.ReadSegment(1024, capacity: 1 << 20, out VirtioBlkDiscardWriteZeroes s);
                Assert.Equal((segmentSector, segmentSectors), (s.Sector, s.NumSectors));
                Assert.True(segment != VirtioBlkRequestError.None || (segmentSectors <= 1024 && segmentSector + segmentSectors <= (1 << 20)));
            }
        }

        Assert.True(r.TryWriteStatus(VirtioBlkStatus.IoError));
        ulong last = 0, left = writable;
        foreach (VirtqBuffer b in buffers)
        {
            if (b.IsWriteOnly && b.Length > 0)
            {
                left -= b.Length;
                if (left == 0)
                {
                    last = b.Address + b.Length - 1;
                }
            }
        }

        Assert.Equal((byte)VirtioBlkStatus.IoError, rig.Ram.GetSpan(last, 1)[0]);
    }
}
