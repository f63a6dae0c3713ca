using VhostUserBackend.Testing;
using VhostUserBackend.Virtio;

namespace Vhost.Vmm;

/// <summary>
/// One virtqueue as a VMM drives it: the split ring laid out in guest RAM by a
/// <see cref="SplitQueueDriver"/>, the kick eventfd the VMM signals and the call eventfd the
/// device signals. Made by <see cref="VmmVhostDevice.AddQueue"/> for any transport. Not
/// thread-safe: one thread submits and reaps.
/// </summary>
public sealed class VmmQueue : IDisposable
{
    private readonly Epoll _epoll;

    internal VmmQueue(int index, SplitQueueDriver driver, int maxIndirectEntries)
    {
        MaxIndirectEntries = maxIndirectEntries;
        Index = index;
        Driver = driver;
        Kick = new EventFd(EventFdFlags.NonBlocking);
        try
        {
            Call = new EventFd(EventFdFlags.NonBlocking);
            try
            {
                _epoll = new Epoll();
                try
                {
                    _epoll.Add(Call, Interop.EPOLLIN, 0);
                }
                catch
                {
                    _epoll.Dispose();
                    throw;
                }
            }
            catch
            {
                Call.Dispose();
                throw;
            }
        }
        catch
        {
            Kick.Dispose();
            throw;
        }
    }

    /// <summary>The queue index.</summary>
    public int Index { get; }

    /// <summary>The guest-driver model of the ring.</summary>
    public SplitQueueDriver Driver { get; }

    /// <summary>The eventfd the VMM signals to notify the back-end (SET_VRING_KICK).</summary>
    public EventFd Kick { get; }

    /// <summary>The eventfd the back-end signals on completions (SET_VRING_CALL).</summary>
    public EventFd Call { get; }

    /// <summary>Entries per indirect table (0 when indirect descriptors are not in use).</summary>
    public int MaxIndirectEntries { get; }

    /// <summary>Kicks sent so far (those the ring's notification suppression asked for).</summary>
    public long KicksSent { get; private set; }

    /// <summary>The sum of the call eventfd's counter values read so far (each device signal adds at least one).</summary>
    public long CallsReceived { get; private set; }

    /// <summary>Adds a chain, publishes it and kicks when the device wants a notification.</summary>
    /// <param name="buffers">Guest physical buffers, device-readable ones first.</param>
    /// <param name="indirect">Put the chain in an indirect table (needs indirect descriptors negotiated).</param>
    /// <returns>The head index, which the completion carries.</returns>
    /// <exception cref="InvalidOperationException">The ring has no room for the chain.</exception>
    public ushort Submit(ReadOnlySpan<VirtqBuffer> buffers, bool indirect = false)
    {
        ushort head = Driver.AddBuffers(buffers, indirect);
        Driver.Publish();
        if (Driver.NeedsKick())
        {
            Kick.Signal();
            KicksSent++;
        }

        return head;
    }

    /// <summary>Reads the next completion, if any.</summary>
    /// <param name="completion">The completion.</param>
    /// <returns>False when the used ring has nothing new.</returns>
    public bool TryGetCompletion(out VmmCompletion completion)
    {
        if (Driver.TryGetUsed(out ushort head, out uint length))
        {
            completion = new VmmCompletion(head, length);
            return true;
        }

        completion = default;
        return false;
    }

    /// <summary>
    /// Waits for the next completion: reads the used ring, else asks for an interrupt and sleeps
    /// on the call eventfd (a lost wake-up is covered by re-reading the ring after enabling).
    /// </summary>
    /// <param name="timeout">How long to wait.</param>
    /// <returns>The completion.</returns>
    /// <exception cref="TimeoutException">Nothing completed within <paramref name="timeout"/>.</exception>
    public VmmCompletion WaitForCompletion(TimeSpan timeout)
    {
        long deadline = Environment.TickCount64 + (long)timeout.TotalMilliseconds;
        Span<EpollEvent> events = stackalloc EpollEvent[1];
        while (true)
        {
            if (TryGetCompletion(out VmmCompletion c))
            {
                return c;
            }

            if (Driver.EnableInterrupts())
            {
                continue;
            }

            long left = deadline - Environment.TickCount64;
            if (left <= 0)
            {
                throw new TimeoutException($"queue {Index}: no completion within {timeout.TotalMilliseconds:F0} ms (avail {Driver.AvailIndex}, used {Driver.DeviceUsedIndex}, seen {Driver.LastUsedIndex})");
            }

            if (_epoll.Wait(events, (int)Math.Min(left, int.MaxValue)) > 0)
            {
                ReadCalls();
            }
        }
    }

    /// <summary>Waits until <see cref="CallsReceived"/> reaches <paramref name="count"/>: the device signalled the call eventfd that often (or with that total).</summary>
    /// <param name="count">The total to reach.</param>
    /// <param name="timeout">How long to wait.</param>
    /// <returns>False when the total was not reached within <paramref name="timeout"/>.</returns>
    public bool WaitForCalls(long count, TimeSpan timeout)
    {
        long deadline = Environment.TickCount64 + (long)timeout.TotalMilliseconds;
        Span<EpollEvent> events = stackalloc EpollEvent[1];
        while (true)
        {
            ReadCalls();
            if (CallsReceived >= count)
            {
                return true;
            }

            long left = deadline - Environment.TickCount64;
            if (left <= 0)
            {
                return false;
            }

            _epoll.Wait(events, (int)Math.Min(left, int.MaxValue));
        }
    }

    /// <summary>Waits for the completion of chain <paramref name="head"/>; other completions met on the way are returned in <paramref name="others"/>.</summary>
    /// <param name="head">The head to wait for.</param>
    /// <param name="timeout">How long to wait.</param>
    /// <param name="others">Receives completions of other chains (may be null to drop them).</param>
    /// <returns>The completion of <paramref name="head"/>.</returns>
    /// <exception cref="TimeoutException">It did not complete in time.</exception>
    public VmmCompletion WaitForCompletion(ushort head, TimeSpan timeout, List<VmmCompletion>? others = null)
    {
        long deadline = Environment.TickCount64 + (long)timeout.TotalMilliseconds;
        while (true)
        {
            long left = Math.Max(0, deadline - Environment.TickCount64);
            VmmCompletion c = WaitForCompletion(TimeSpan.FromMilliseconds(left));
            if (c.Head == head)
            {
                return c;
            }

            others?.Add(c);
        }
    }

    private void ReadCalls()
    {
        if (Call.TryRead(out ulong value))
        {
            CallsReceived += (long)value;
        }
    }

    /// <summary>Closes the eventfds.</summary>
    public void Dispose()
    {
        _epoll.Dispose();
        Kick.Dispose();
        Call.Dispose();
    }
}
