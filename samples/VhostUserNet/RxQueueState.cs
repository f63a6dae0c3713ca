using VhostUserBackend;
using VhostUserBackend.Virtio;

namespace VhostUserNet;

/// <summary>
/// RX chains a port's worker took from one RX ring but has not filled yet: with MRG_RXBUF a frame
/// may need more buffers than the driver has posted so far; the chains wait here (in order) until
/// enough arrive, and a driver whose buffers are all smaller than a frame keeps its chain for the
/// next frame. The port's worker owns it; the daemon's control thread uses it only in
/// <see cref="NetPort.UnpopHeldChains"/>, while that worker is paused.
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

    /// <summary>Whether a used element was added since the last signal.</summary>
    public bool NeedsSignal;

    /// <summary>
    /// Gives every held chain back to <paramref name="ring"/> unused, newest first, so the driver
    /// keeps its buffers: the ring stops (the base the front-end saves excludes them, and they are
    /// popped again when it restarts) or its memory changes (they are popped again at once, under
    /// the new memory). A chain the ring will not take back (one popped before a chain that was
    /// completed at once, a malformed one the driver posted in between) and those older than it are
    /// completed empty instead: the ring waits for none of them.
    /// </summary>
    /// <param name="ring">The RX ring the chains came from (its worker paused).</param>
    public void PutBack(Vring ring)
    {
        int c = Count - 1;
        try
        {
            for (; c >= 0; c--)
            {
                ring.Unpop(Writers[c].Chain);
            }
        }
        catch (InvalidOperationException)
        {
            for (; c >= 0; c--)
            {
                ring.Complete(Writers[c].Chain, 0);
            }
        }

        Count = 0;
    }

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
