using Vhost.Vmm;

namespace Vhost.HostileTests.Targets;

/// <summary>One well-formed request on a device, made the way a VMM would, and checked.</summary>
public interface IDeviceExercise
{
    /// <summary>What the VMM negotiates and lays out.</summary>
    VmmDeviceOptions Options { get; }

    /// <summary>Makes the request on queue 0 of a started device and checks the answer.</summary>
    /// <param name="device">The started device.</param>
    /// <param name="timeout">How long the answer may take.</param>
    /// <exception cref="Exception">The answer is missing or wrong (an xunit assertion or a timeout).</exception>
    void Run(VmmDevice device, TimeSpan timeout);
}
