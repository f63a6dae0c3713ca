using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Vhost.User;

namespace VhostUserBackend.Hosting.Tests;

[Collection("FdCount")]
public sealed class HostedDaemonFdTests
{
    [Fact]
    public async Task HostStartServeStopDispose_LeavesNoFd()
    {
        CancellationToken ct = TestContext.Current.CancellationToken;
        string path = TestHost.NewSocketPath();
        await RunOnce(TestHost.NewSocketPath(), ct); // warm-up: lazily created runtime fds
        int before = Directory.GetFiles("/proc/self/fd").Length;
        await RunOnce(path, ct);

        // A leak is more fds than before. Fewer is not a leak: the host's own fds from the warm-up
        // (file watchers, for example) may close later, on their own threads (a CI run saw 142
        // after 144). Give fds closed asynchronously a moment before judging.
        int after = Directory.GetFiles("/proc/self/fd").Length;
        for (int i = 0; i < 100 && after > before; i++)
        {
            await Task.Delay(20, ct);
            after = Directory.GetFiles("/proc/self/fd").Length;
        }

        Assert.True(after <= before, $"{after - before} fd(s) left open by a host start, serve, stop and dispose ({before} before, {after} after)");
    }

    private static async Task RunOnce(string path, CancellationToken ct)
    {
        HostApplicationBuilder builder = TestHost.CreateBuilder(new TestLogger());
        builder.Services.AddVhostUserBackend<EchoDevice>(o => o.SocketPath = path);
        using (IHost host = builder.Build())
        {
            await host.StartAsync(ct);
            using (VhostUserFrontend f = TestHost.ConnectAndNegotiate(path, expectedQueues: 1))
            {
                var service = host.Services.GetRequiredService<VhostUserBackendService<EchoDevice>>();
                await TestHost.WaitUntil(() => service.IsConnected, "the connection");
                await host.StopAsync(ct);
            }
        }
    }
}
