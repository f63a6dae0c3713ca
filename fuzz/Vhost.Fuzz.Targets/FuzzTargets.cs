using VhostUserBackend.Memory;
using VhostUserBackend.Virtio;

namespace Vhost.Fuzz;

/// <summary>
/// The fuzz targets by name, and the exceptions each is allowed to end with. The AFL++ harness
/// (fuzz/Vhost.Fuzz) and the corpus replay tests run the same code through <see cref="RunChecked"/>.
/// </summary>
public static class FuzzTargets
{
    /// <summary>Every target name (also the corpus folder names under fuzz/corpus).</summary>
    public static IReadOnlyList<string> Names { get; } = ["message", "split-chain", "packed-chain", "inflight", "packed-inflight", "config", "net-state", "postcopy", "shmem-map", "iotlb"];

    /// <summary>Runs <paramref name="target"/> on <paramref name="input"/>; may throw.</summary>
    /// <param name="target">A name from <see cref="Names"/>.</param>
    /// <param name="input">The fuzzer's bytes.</param>
    /// <exception cref="ArgumentException">An unknown target.</exception>
    public static void Run(string target, ReadOnlySpan<byte> input)
    {
        switch (target)
        {
            case "message": MessageTarget.Run(input); break;
            case "split-chain": ChainTargets.RunSplit(input); break;
            case "packed-chain": ChainTargets.RunPacked(input); break;
            case "inflight": InflightTarget.Run(input); break;
            case "packed-inflight": PackedInflightTarget.Run(input); break;
            case "config": ConfigTarget.Run(input); break;
            case "net-state": NetStateTarget.Run(input); break;
            case "postcopy": PostcopyTarget.Run(input); break;
            case "shmem-map": ShmemMapTarget.Run(input); break;
            case "iotlb": IotlbTarget.Run(input); break;
            default: throw new ArgumentException($"unknown fuzz target '{target}' (known: {string.Join(", ", Names)})", nameof(target));
        }
    }

    /// <summary>Whether <paramref name="target"/> may end with <paramref name="exception"/> (bad input refused cleanly).</summary>
    /// <param name="target">A name from <see cref="Names"/>.</param>
    /// <param name="exception">What the run threw.</param>
    /// <returns>True when the contract allows it.</returns>
    public static bool IsAllowed(string target, Exception exception) => exception switch
    {
        FuzzContractException => false,
        VirtqueueException or GuestMemoryException => target is "split-chain" or "packed-chain" or "inflight" or "packed-inflight" or "iotlb",
        VhostException => target is "message" or "config" or "inflight" or "packed-inflight",
        InvalidDataException => target is "net-state",
        ArgumentException => target is "shmem-map" or "iotlb",
        _ => false,
    };

    /// <summary>
    /// Runs <paramref name="target"/> and returns the allowed exception it ended with (or null);
    /// any other exception propagates (a crash for the fuzzer, a failure for the replay test).
    /// </summary>
    /// <param name="target">A name from <see cref="Names"/>.</param>
    /// <param name="input">The bytes.</param>
    /// <returns>The allowed exception, or null when the input was accepted.</returns>
    public static Exception? RunChecked(string target, ReadOnlySpan<byte> input)
    {
        try
        {
            Run(target, input);
            return null;
        }
        catch (Exception e) when (IsAllowed(target, e))
        {
            return e;
        }
    }
}
