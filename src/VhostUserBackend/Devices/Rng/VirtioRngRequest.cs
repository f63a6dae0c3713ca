using System.Security.Cryptography;
using VhostUserBackend.Virtio;

namespace VhostUserBackend.Devices.Rng;

/// <summary>
/// The virtio entropy device's one request (VIRTIO 1.3 §5.4, device ID 4): the driver posts
/// device-writable buffers on its single request queue and the device fills them with random
/// bytes. The device has no feature bits of its own and no config space.
/// </summary>
public static class VirtioRngRequest
{
    /// <summary>The virtio device ID of the entropy device.</summary>
    public const int DeviceId = 4;

    private static readonly VirtioRngEntropySource SystemRandom = RandomNumberGenerator.Fill;

    /// <summary>
    /// Fills the writable buffers of <paramref name="chain"/>, in order, with up to
    /// <paramref name="maxBytes"/> bytes from <paramref name="source"/> (default: the system's
    /// cryptographic RNG, <see cref="RandomNumberGenerator.Fill(Span{byte})"/>), written in place
    /// in guest memory and logged for a migration as they are committed. Allocates nothing.
    /// </summary>
    /// <param name="chain">The request, popped from the ring and not yet completed.</param>
    /// <param name="maxBytes">The most bytes to give (a rate limit's budget); the driver accepts fewer than it asked for.</param>
    /// <param name="source">The entropy, or <see langword="null"/> for the system RNG.</param>
    /// <returns>The bytes written: what to report with <see cref="Vring.AddUsed"/>.</returns>
    /// <exception cref="VirtqueueException">The chain is malformed (a hostile or broken driver); complete it with 0 bytes.</exception>
    public static uint Fill(DescriptorChain chain, ulong maxBytes = ulong.MaxValue, VirtioRngEntropySource? source = null)
    {
        source ??= SystemRandom;
        DescriptorChainWriter writer = chain.CreateWriter();
        ulong left = Math.Min(writer.Remaining, maxBytes);
        while (left > 0 && writer.TryGetSpan(out Span<byte> span))
        {
            int n = (int)Math.Min((ulong)span.Length, left);
            source(span[..n]);
            writer.Commit((ulong)n);
            left -= (ulong)n;
        }

        return writer.BytesWritten;
    }
}
