using VhostUserBackend.Memory;
using VhostUserBackend.Virtio;

namespace VhostUserNet;

/// <summary>
/// RX chains a port's worker took from one RX ring but has not filled yet: with MRG_RXBUF a frame
/// may need more buffers than the driver has posted so far; the chains wait here (in order) until
/// enough arrive, and a driver whose buffers are all smaller than a frame keeps its chain for the
/// next frame. Only the port's worker touches it.
/// </summary>
internal sealed class RxQueueState
{
    /// <summary>The most chains one frame may span (64 KiB GSO frames in 1.5 KiB buffers need 44).</summary>
    public const int MaxChains = 64;

    /// <summary>Writers over the held chains, oldest first (each knows its chain and its writable bytes).</summary>
    public readonly DescriptorChainWriter[] Writers = new DescriptorChainWriter[MaxChains];

    /// <summary>Bytes written into each chain of the frame being delivered.</summary>
    public readonly uint[] Written = new uint[MaxChains];

    /// <summary>How many chains are held.</summary>
    public int Count;

    /// <summary>The ring's state epoch when the chains were taken (a stop or restart makes them invalid).</summary>
    public int Epoch;

    /// <summary>The memory snapshot the chains' addresses refer to.</summary>
    public GuestMemory? Memory;

    /// <summary>Whether a used element was added since the last signal.</summary>
    public bool NeedsSignal;

    /// <summary>Drops the first <paramref name="count"/> chains (they were returned to the driver).</summary>
    /// <param name="count">Chains to drop.</param>
    public void RemoveFirst(int count)
    {
        int left = Count - count;
        if (left > 0)
        {
            Array.Copy(Writers, count, Writers, 0, left);
        }

        Count = left;
    }
}
