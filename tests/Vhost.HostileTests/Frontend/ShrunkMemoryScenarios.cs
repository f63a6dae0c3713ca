using Vhost.HostileTests.Memory;
using Vhost.HostileTests.Targets;

namespace Vhost.HostileTests.Frontend;

/// <summary>
/// Guest RAM that the daemon cannot seal (a memfd sealed with <c>F_SEAL_SEAL</c> alone), shrunk by
/// the front-end under a running ring: the daemon's next access faults with SIGBUS. The daemon
/// must survive it (the fault guard), fail the connection's rings and drop the connection.
/// </summary>
public static class ShrunkMemoryScenarios
{
    /// <summary>Every scenario of this class.</summary>
    /// <returns>The scenarios.</returns>
    public static IEnumerable<HostileScenario> All()
    {
        const string C = "truncate unsealed guest memory";
        yield return new(C, "to 0 bytes, then kick (rings and buffers gone)", t => Attack(t, 0, 0));
        yield return new(C, "to half, then kick (rings kept, the request's buffers gone)", t => Attack(t, ShrunkGuestMemory.RamSize / 2, (ulong)ShrunkGuestMemory.RamSize / 2));
    }

    /// <summary>Publishes a request, shrinks the file, kicks, and gives the daemon up to 2 s to drop the connection (a device that never touches the ring, such as net's RX queue, does not notice).</summary>
    private static void Attack(IDaemonTarget t, long size, ulong bufferOffset)
    {
        using ShrunkGuestMemory attack = ShrunkGuestMemory.Start(t.SocketPath, bufferOffset);
        attack.TruncateAndKick(size);
        long deadline = Environment.TickCount64 + 2000;
        while (Environment.TickCount64 < deadline)
        {
            try
            {
                attack.Frontend.GetFeatures();
            }
            catch (Exception e) when (e is VhostException or IOException)
            {
                return;
            }

            Thread.Sleep(20);
        }
    }
}
