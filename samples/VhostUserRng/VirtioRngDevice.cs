using System.Security.Cryptography;
using Microsoft.Extensions.Logging;
using Vhost.Virtio;
using VhostUserBackend;
using VhostUserBackend.Devices.Rng;
using VhostUserBackend.Virtio;

namespace VhostUserRng;

/// <summary>
/// A virtio-rng device (virtio 1.2 §5.4): one request queue whose device-writable buffers are
/// filled from the system's cryptographic RNG (<see cref="RandomNumberGenerator.Fill"/>), straight
/// into guest memory. With a rate limit, a token bucket bounds the bytes per second; when it is
/// empty the worker leaves the remaining requests in the ring and a timerfd wakes it when tokens
/// are back (the worker never sleeps).
/// </summary>
internal sealed class VirtioRngDevice : IVhostUserBackend, IDisposable
{
    /// <summary>The device event of the refill timer (above the reserved ring values).</summary>
    public const int TimerEvent = 16;

    /// <summary>The least number of tokens worth serving a request with (and waking up for).</summary>
    private const long MinimumChunk = 64;

    private readonly RateLimiter? _limiter;
    private readonly RefillTimer? _timer;
    private readonly ILogger _logger;
    private long _bytes;
    private bool _timerArmed;

    /// <summary>Creates the device.</summary>
    /// <param name="bytesPerSecond">The rate limit, or 0 for none.</param>
    /// <param name="logger">Logs bad chains.</param>
    public VirtioRngDevice(long bytesPerSecond, ILogger logger)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(bytesPerSecond);
        _logger = logger;
        if (bytesPerSecond > 0)
        {
            _limiter = new RateLimiter(bytesPerSecond);
            _timer = new RefillTimer();
        }
    }

    /// <inheritdoc/>
    public int QueueCount => 1;

    /// <inheritdoc/>
    public ushort MaxQueueSize => 1024;

    /// <inheritdoc/>
    public ulong Features => (ulong)(VirtioFeatures.Version1 | VirtioFeatures.RingEventIndex | VirtioFeatures.RingIndirectDescriptors | VirtioFeatures.RingPacked);

    /// <summary>Random bytes handed to the guest so far.</summary>
    public long BytesServed => Interlocked.Read(ref _bytes);

    /// <inheritdoc/>
    public void OnWorkersStarted(IReadOnlyList<VhostUserWorker> workers)
    {
        if (_timer is not null)
        {
            workers[0].RegisterListener(_timer.Handle, VringEpollEvents.In, TimerEvent);
        }
    }

    /// <inheritdoc/>
    public void HandleEvent(int deviceEvent, VringEpollEvents events, ReadOnlySpan<Vring> vrings, int workerIndex)
    {
        if (deviceEvent == TimerEvent)
        {
            _timer!.Drain();
            _timerArmed = false;
        }
        else if (deviceEvent != 0)
        {
            return;
        }

        Vring vring = vrings[0];
        if (!vring.IsReady)
        {
            return;
        }

        bool used = false;
        bool starved = false;
        do
        {
            vring.DisableNotification();
            while (true)
            {
                long budget = long.MaxValue;
                if (_limiter is not null)
                {
                    budget = _limiter.Available();
                    if (budget < MinimumChunk)
                    {
                        starved = true;
                        break;
                    }
                }

                if (!vring.TryPopDescriptorChain(out DescriptorChain chain))
                {
                    break;
                }

                uint n = Fill(chain, budget);
                _limiter?.Take(n);
                vring.AddUsed(chain.Head, n);
                Interlocked.Add(ref _bytes, n);
                used = true;
            }
        }
        while (!starved && vring.EnableNotification());

        if (used)
        {
            vring.SignalUsedQueue();
        }

        if (starved && !_timerArmed)
        {
            // Requests wait in the ring; come back when a useful amount of tokens is there.
            _timer!.Arm(_limiter!.TimeUntil(MinimumChunk));
            _timerArmed = true;
        }
    }

    /// <inheritdoc/>
    public void Dispose() => _timer?.Dispose();

    /// <summary>Fills the chain's writable buffers with up to <paramref name="budget"/> random bytes; returns the count (0 for a malformed chain, logged).</summary>
    private uint Fill(DescriptorChain chain, long budget)
    {
        try
        {
            return VirtioRngRequest.Fill(chain, (ulong)budget);
        }
        catch (VirtqueueException e)
        {
            _logger.LogWarning("request {Head}: {Reason}", chain.Head, e.Message);
            return 0;
        }
    }
}
