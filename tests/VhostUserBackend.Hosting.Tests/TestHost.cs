using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Vhost.User;
using Vhost.User.Messages;
using Vhost.Virtio;

namespace VhostUserBackend.Hosting.Tests;

/// <summary>Builds in-process hosts the way an application does (Host.CreateApplicationBuilder), without the default file and environment sources.</summary>
internal static class TestHost
{
    public static string NewSocketPath() => Path.Combine(Path.GetTempPath(), $"vuh-{Guid.NewGuid():N}.sock");

    public static HostApplicationBuilder CreateBuilder(TestLogger logs, IDictionary<string, string?>? configuration = null)
    {
        HostApplicationBuilder builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Configuration.AddInMemoryCollection(configuration ?? new Dictionary<string, string?>());
        builder.Logging.ClearProviders();
        builder.Logging.SetMinimumLevel(LogLevel.Information);
        builder.Logging.AddProvider(logs);
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(10));
        return builder;
    }

    /// <summary>Negotiates as QEMU does up to SET_OWNER and SET_FEATURES.</summary>
    public static VhostUserFrontend ConnectAndNegotiate(string socketPath, int expectedQueues)
        => Negotiate(VhostUserFrontend.Connect(socketPath, TimeSpan.FromSeconds(5)), expectedQueues);

    /// <summary>Negotiates on <paramref name="frontend"/> as QEMU does up to SET_OWNER and SET_FEATURES.</summary>
    public static VhostUserFrontend Negotiate(VhostUserFrontend frontend, int expectedQueues)
    {
        ulong offered = frontend.GetFeatures();
        Assert.NotEqual(0UL, offered & (ulong)VhostUserVirtioFeatures.ProtocolFeatures);
        Assert.NotEqual(0UL, offered & (ulong)VirtioFeatures.Version1);
        VhostUserProtocolFeatures protocol = frontend.GetProtocolFeatures();
        Assert.True(protocol.HasFlag(VhostUserProtocolFeatures.MQ));
        frontend.SetProtocolFeatures(protocol & (VhostUserProtocolFeatures.MQ | VhostUserProtocolFeatures.ReplyAck));
        Assert.Equal(expectedQueues, frontend.GetQueueNum());
        frontend.SetOwner();
        frontend.SetFeatures((ulong)VirtioFeatures.Version1 | (ulong)VhostUserVirtioFeatures.ProtocolFeatures);
        return frontend;
    }

    public static async Task WaitUntil(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"timed out waiting for {what}");
            await Task.Delay(10, TestContext.Current.CancellationToken);
        }
    }
}
