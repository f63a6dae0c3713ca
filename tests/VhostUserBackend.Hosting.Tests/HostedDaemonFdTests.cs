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
        Assert.Equal(before, Directory.GetFiles("/proc/self/fd").Length);
    }

    private static async Task RunOnce(string path, CancellationToken ct)
    {
        HostApplicationBuilder builder = TestHost.CreateBuilder(new ListLoggerProvider());
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
