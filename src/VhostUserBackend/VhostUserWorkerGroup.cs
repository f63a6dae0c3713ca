using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace VhostUserBackend;

/// <summary>
/// Worker threads shared by several <see cref="VhostUserDaemon"/>s (set
/// <see cref="VhostUserDaemonOptions.WorkerGroup"/>): the way a DPDK lcore polls many ports. The
/// workers of every daemon in the group with the same thread index run on the same thread, so a
/// virtual switch forwards a frame from one port's TX ring straight into another port's RX ring
/// on that thread, with no hand-off, and one poller serves every ring of every port (a busy ring
/// cannot starve another: each gets a turn in every polling round).
/// </summary>
/// <remarks>
/// The threads run from construction until <see cref="Dispose"/>. A daemon attaches its workers
/// when it is created and detaches them when it stops; dispose the daemons first. A device's exit
/// event (<see cref="IVhostUserBackend.CreateExitEvent"/>) detaches that device's worker only.
/// </remarks>
public sealed class VhostUserWorkerGroup : IDisposable
{
    private readonly VringWorkerThread[] _threads;

    /// <summary>Starts <paramref name="threadCount"/> worker threads.</summary>
    /// <param name="threadCount">Threads (1 to 64): a daemon's thread index t runs on thread t.</param>
    /// <param name="pollingTime">The polling window after each event (zero: notification-driven); it replaces the devices' <see cref="IVhostUserBackend.GetPollingTime"/>.</param>
    /// <param name="loggerFactory">Where thread failures go.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="threadCount"/> is out of range, or the polling time is negative.</exception>
    public VhostUserWorkerGroup(int threadCount, TimeSpan pollingTime = default, ILoggerFactory? loggerFactory = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(threadCount, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(threadCount, 64);
        ArgumentOutOfRangeException.ThrowIfLessThan(pollingTime, TimeSpan.Zero);
        PollingTime = pollingTime;
        ILogger logger = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger<VhostUserWorkerGroup>();
        _threads = new VringWorkerThread[threadCount];
        try
        {
            for (int i = 0; i < threadCount; i++)
            {
                _threads[i] = new VringWorkerThread($"vhost-user shared worker {i}", logger, shared: true, pollingTime);
                _threads[i].Start();
            }
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>The number of threads.</summary>
    public int ThreadCount => _threads.Length;

    /// <summary>The polling window of every thread.</summary>
    public TimeSpan PollingTime { get; }

    /// <summary>Stops the threads and releases their epoll sets and eventfds. Idempotent.</summary>
    public void Dispose()
    {
        foreach (VringWorkerThread? t in _threads)
        {
            t?.Dispose();
        }
    }

    /// <summary>The thread a daemon's worker <paramref name="workerIndex"/> runs on.</summary>
    /// <exception cref="ArgumentException">The device has more workers than the group has threads.</exception>
    internal VringWorkerThread Thread(int workerIndex, int threadCount)
    {
        if (threadCount > _threads.Length)
        {
            throw new ArgumentException($"the device has {threadCount} workers (QueuesPerWorker) and the worker group {_threads.Length} threads");
        }

        return _threads[workerIndex];
    }
}
