using System.Globalization;
using System.Runtime.InteropServices;

namespace VhostSamples;

/// <summary>
/// An opt-in statistics line for benchmarks: when the environment variable
/// <see cref="EnvironmentVariable"/> is set to <c>1</c>, each SIGUSR1 writes one line to stderr,
/// <c>vhost-stats gc0=N gc1=N gc2=N allocated=BYTES</c> (process-wide GC collection counts and
/// bytes allocated so far). Two lines bracket a measured interval; their difference is what the
/// back-end allocated in it. Without the variable nothing is registered.
/// </summary>
internal static class SampleStats
{
    /// <summary>The environment variable that turns the SIGUSR1 statistics line on.</summary>
    public const string EnvironmentVariable = "VHOST_SAMPLE_STATS";

    private const int SigUsr1 = 10; // Linux x86-64 and arm64

    /// <summary>Registers the SIGUSR1 handler when <see cref="EnvironmentVariable"/> is <c>1</c>; dispose the result on exit.</summary>
    /// <returns>The registration, or null when the variable is not set.</returns>
    public static IDisposable? RegisterFromEnvironment()
    {
        if (Environment.GetEnvironmentVariable(EnvironmentVariable) != "1")
        {
            return null;
        }

        return PosixSignalRegistration.Create((PosixSignal)SigUsr1, static context =>
        {
            context.Cancel = true;

            // Read everything before formatting, so the line's own allocation falls after the reading.
            int gc0 = GC.CollectionCount(0);
            int gc1 = GC.CollectionCount(1);
            int gc2 = GC.CollectionCount(2);
            long allocated = GC.GetTotalAllocatedBytes(precise: true);
            Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"vhost-stats gc0={gc0} gc1={gc1} gc2={gc2} allocated={allocated}"));
        });
    }
}
