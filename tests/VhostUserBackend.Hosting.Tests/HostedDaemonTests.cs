using System.Diagnostics.Metrics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using Vhost;
using Vhost.User;
using VhostUserBackend.Testing;
using VhostUserBackend.Virtio;

namespace VhostUserBackend.Hosting.Tests;

public sealed class HostedDaemonTests
{
    // Linux errno values (the public surface carries an errno as an int: VhostException.ErrorCode).
    private const int EPIPE = 32;
    private const int ECONNRESET = 104;

    [Fact]
    public async Task ConfigurationBound_FrontendNegotiates_HostStopDisconnectsAndRemovesSocket()
    {
        CancellationToken ct = TestContext.Current.CancellationToken;
        string path = TestHost.NewSocketPath();
        var logs = new TestLogger();
        HostApplicationBuilder builder = TestHost.CreateBuilder(logs, new Dictionary<string, string?> { ["VhostUser:SocketPath"] = path });
        builder.Services.AddVhostUserBackend<EchoDevice>(builder.Configuration.GetSection("VhostUser"));
        using IHost host = builder.Build();
        var service = host.Services.GetRequiredService<VhostUserBackendService<EchoDevice>>();
        HealthCheckService health = host.Services.GetRequiredService<HealthCheckService>();
        Assert.Equal(VhostUserBackendState.NotStarted, service.State);
        Assert.Equal(HealthStatus.Unhealthy, (await health.CheckHealthAsync(ct)).Status);

        await host.StartAsync(ct);
        Assert.Equal(VhostUserBackendState.Running, service.State);
        Assert.Equal(path, service.SocketPath);
        Assert.True(File.Exists(path));
        Assert.Same(host.Services.GetRequiredService<EchoDevice>(), service.Device);
        HealthReport idle = await health.CheckHealthAsync(ct);
        HealthReportEntry idleEntry = idle.Entries["vhost-user:EchoDevice"];
        Assert.Equal(HealthStatus.Healthy, idleEntry.Status);
        Assert.Contains("no front-end is connected", idleEntry.Description);
        Assert.Contains("vhost-user", idleEntry.Tags);

        VhostUserFrontend frontend = TestHost.ConnectAndNegotiate(path, expectedQueues: 1);
        try
        {
            await TestHost.WaitUntil(() => service.IsConnected, "the daemon to see the front-end");
            HealthReportEntry busy = (await health.CheckHealthAsync(ct)).Entries["vhost-user:EchoDevice"];
            Assert.Equal(HealthStatus.Healthy, busy.Status);
            Assert.Contains("serving a front-end", busy.Description);
            Assert.Equal(true, busy.Data["connected"]);
            Assert.Equal(1L, busy.Data["connections"]);

            await host.StopAsync(ct);
            Assert.Equal(VhostUserBackendState.Stopped, service.State);
            Assert.False(service.IsConnected);
            Assert.False(File.Exists(path));
            var e = Assert.ThrowsAny<VhostException>(() => frontend.GetFeatures());
            Assert.True(e is VhostUserConnectionClosedException || e.ErrorCode is EPIPE or ECONNRESET, $"unexpected: {e}");
        }
        finally
        {
            frontend.Dispose();
        }

        HealthReportEntry stopped = (await health.CheckHealthAsync(ct)).Entries["vhost-user:EchoDevice"];
        Assert.Equal(HealthStatus.Unhealthy, stopped.Status);
        Assert.Contains("stopped", stopped.Description);

        // The host's logger got the daemon's and the service's messages.
        Assert.Contains(logs.Entries, e => e.Category == "VhostUserBackend.VhostUserDaemon" && e.Message.Contains($"listening on {path}", StringComparison.Ordinal));
        Assert.Contains(logs.Lines, l => l.Contains("front-end connected (connection 1)", StringComparison.Ordinal));
        Assert.Contains(logs.Lines, l => l.Contains("front-end disconnected (connection 1)", StringComparison.Ordinal));
        Assert.Contains(logs.Lines, l => l.Contains("the vhost-user device EchoDevice stopped", StringComparison.Ordinal));
    }

    [Fact]
    public async Task DelegateOptions_RingTraffic_IsCountedOnTheDaemonMeter()
    {
        CancellationToken ct = TestContext.Current.CancellationToken;
        string path = TestHost.NewSocketPath();
        long kicks = 0, chains = 0, calls = 0;
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == VhostUserDaemon.MeterName)
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((instrument, value, tags, state) =>
        {
            switch (instrument.Name)
            {
                case "vhost_user.queue.kicks": Interlocked.Add(ref kicks, value); break;
                case "vhost_user.queue.descriptors": Interlocked.Add(ref chains, value); break;
                case "vhost_user.queue.calls": Interlocked.Add(ref calls, value); break;
            }
        });
        listener.Start();

        HostApplicationBuilder builder = TestHost.CreateBuilder(new TestLogger());
        builder.Services.AddVhostUserBackend<EchoDevice>(o => o.SocketPath = path);
        using IHost host = builder.Build();
        await host.StartAsync(ct);
        var device = host.Services.GetRequiredService<EchoDevice>();

        using GuestRam ram = GuestRam.Create(1 << 20);
        GuestRamRegion region = ram.Regions[0];
        ulong User(ulong gpa) => region.UserAddress + (gpa - region.GuestPhysicalAddress);
        var driver = new SplitQueueDriver(ram, 64);
        ulong buffer = ram.Allocate(4096, 64);
        using var kick = new EventFd();
        using var call = new EventFd(EventFdFlags.NonBlocking);
        using (VhostUserFrontend frontend = TestHost.ConnectAndNegotiate(path, expectedQueues: 1))
        {
            frontend.SetMemoryTable([new VhostMemoryRegionInfo(region.GuestPhysicalAddress, region.Size, region.UserAddress, region.FileOffset, ram.FileHandle)]);
            frontend.SetVringNum(0, driver.Size);
            frontend.SetVringBase(0, 0);
            frontend.SetVringAddress(0, new VringConfigData(driver.Size, driver.Size, VringFlags.None, User(driver.DescriptorTableAddress), User(driver.UsedRingAddress), User(driver.AvailRingAddress)));
            frontend.SetVringKick(0, kick);
            frontend.SetVringCall(0, call);
            frontend.SetVringEnable(0, true);
            for (int i = 0; i < 3; i++)
            {
                driver.AddBuffers([new VirtqBuffer(buffer, 64, false), new VirtqBuffer(buffer + 64, 64, true)]);
                driver.Publish();
                kick.Signal();
                uint written = uint.MaxValue;
                await TestHost.WaitUntil(() => driver.TryGetUsed(out _, out written), $"chain {i} to come back");
                Assert.Equal(0u, written);
            }

            Assert.True(call.TryRead(out ulong signalled) && signalled > 0, "the device signalled the call eventfd");
        }

        await host.StopAsync(ct);
        listener.RecordObservableInstruments();
        Assert.Equal(3, device.Completed);
        Assert.True(Interlocked.Read(ref kicks) >= 1, $"kicks {kicks}");
        Assert.True(Interlocked.Read(ref chains) >= 3, $"chains {chains}");
        Assert.True(Interlocked.Read(ref calls) >= 1, $"calls {calls}");
    }

    [Fact]
    public async Task MissingSocketPath_FailsHostStart_WithTheOptionName()
    {
        HostApplicationBuilder builder = TestHost.CreateBuilder(new TestLogger());
        builder.Services.AddVhostUserBackend<EchoDevice>(builder.Configuration.GetSection("Absent"));
        using IHost host = builder.Build();
        var e = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync(TestContext.Current.CancellationToken));
        Assert.Contains("SocketPath is required", e.Message);
        Assert.Equal(VhostUserBackendState.NotStarted, host.Services.GetRequiredService<VhostUserBackendService<EchoDevice>>().State);
    }

    [Fact]
    public void SocketActivation_IsOptIn_PassedSocketsReplaceTheSocketPathOnlyWhenAskedFor()
    {
        // The validator's answer for an activated process (LISTEN_FDS set) without a path: only an
        // opt-in makes the passed socket count as the endpoint (fd 3 may be someone else's).
        Assert.False(new VhostUserBackendOptions().SocketActivation);
        var optedOut = new VhostUserBackendOptions();
        var optedIn = new VhostUserBackendOptions { SocketActivation = true };
        Assert.True(VhostUserBackendOptionsValidator.Check(optedOut, activated: true).Failed);
        Assert.True(VhostUserBackendOptionsValidator.Check(optedIn, activated: true).Succeeded);
        Assert.True(VhostUserBackendOptionsValidator.Check(optedIn, activated: false).Failed);
    }

    [Fact]
    public async Task ConnectPath_FromConfiguration_DaemonConnectsToTheListeningFrontend_AndAgainAfterItLeaves()
    {
        CancellationToken ct = TestContext.Current.CancellationToken;
        string path = TestHost.NewSocketPath();
        using var frontendListener = new VhostUserListener(path);
        HostApplicationBuilder builder = TestHost.CreateBuilder(new TestLogger(), new Dictionary<string, string?>
        {
            ["VhostUser:ConnectPath"] = path,
            ["VhostUser:Daemon:ReconnectDelay"] = "00:00:00.010",
            ["VhostUser:Daemon:MaxReconnectDelay"] = "00:00:00.100",
        });
        builder.Services.AddVhostUserBackend<EchoDevice>(builder.Configuration.GetSection("VhostUser"));
        using IHost host = builder.Build();
        var service = host.Services.GetRequiredService<VhostUserBackendService<EchoDevice>>();
        await host.StartAsync(ct);
        Assert.Equal("connect:" + path, service.SocketPath);
        for (int i = 1; i <= 2; i++)
        {
            using (VhostUserFrontend frontend = TestHost.Negotiate(new VhostUserFrontend(frontendListener.TryAccept(TimeSpan.FromSeconds(10), ct) ?? throw new TimeoutException("the hosted daemon did not connect")), expectedQueues: 1))
            {
                await TestHost.WaitUntil(() => service.IsConnected, "the connection");
            }

            // The front-end left: the daemon connects again at once (the listener's backlog takes it before it is accepted).
            await TestHost.WaitUntil(() => service.ConnectionCount == i + 1, $"reconnect {i}");
        }

        Assert.Equal(VhostUserBackendState.Running, service.State);
        await host.StopAsync(ct);
        Assert.Equal(VhostUserBackendState.Stopped, service.State);
    }

    [Theory]
    [InlineData("/tmp/a.sock", "/tmp/b.sock", null, "exclude each other")]
    [InlineData(null, "/tmp/b.sock", "00:00:00", "ReconnectDelay")]
    public async Task InvalidModeOrReconnectDelay_FailsHostStart_WithTheOptionName(string? socketPath, string? connectPath, string? delay, string expected)
    {
        HostApplicationBuilder builder = TestHost.CreateBuilder(new TestLogger(), new Dictionary<string, string?>
        {
            ["VhostUser:SocketPath"] = socketPath,
            ["VhostUser:ConnectPath"] = connectPath,
            ["VhostUser:Daemon:ReconnectDelay"] = delay,
        });
        builder.Services.AddVhostUserBackend<EchoDevice>(builder.Configuration.GetSection("VhostUser"));
        using IHost host = builder.Build();
        var e = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync(TestContext.Current.CancellationToken));
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public async Task SocketInUse_FailsHostStart_StateAndHealthReportTheFailure()
    {
        CancellationToken ct = TestContext.Current.CancellationToken;
        string path = TestHost.NewSocketPath();
        using var other = new VhostUserListener(path);
        HostApplicationBuilder builder = TestHost.CreateBuilder(new TestLogger());
        builder.Services.AddVhostUserBackend<EchoDevice>(o => o.SocketPath = path);
        using IHost host = builder.Build();
        var e = await Assert.ThrowsAsync<VhostUserException>(() => host.StartAsync(ct));
        var service = host.Services.GetRequiredService<VhostUserBackendService<EchoDevice>>();
        Assert.Equal(VhostUserBackendState.Faulted, service.State);
        Assert.Same(e, service.Failure);
        HealthReportEntry entry = (await host.Services.GetRequiredService<HealthCheckService>().CheckHealthAsync(ct)).Entries["vhost-user:EchoDevice"];
        Assert.Equal(HealthStatus.Unhealthy, entry.Status);
        Assert.Same(e, entry.Exception);
        Assert.True(File.Exists(path), "the other listener's socket must survive");
    }

    [Fact]
    public async Task TwoDevices_OneHost_EachOnItsOwnSocket_DegradedWhenIdle()
    {
        CancellationToken ct = TestContext.Current.CancellationToken;
        string first = TestHost.NewSocketPath(), second = TestHost.NewSocketPath();
        HostApplicationBuilder builder = TestHost.CreateBuilder(new TestLogger(), new Dictionary<string, string?>
        {
            ["Devices:Echo:SocketPath"] = first,
            ["Devices:Other:SocketPath"] = second,
            ["Devices:Other:DegradedWhenIdle"] = "true",
        });
        builder.Services.AddVhostUserBackend<EchoDevice>(builder.Configuration.GetSection("Devices:Echo"));
        builder.Services.AddVhostUserBackend<OtherDevice>(builder.Configuration.GetSection("Devices:Other"));
        using IHost host = builder.Build();
        await host.StartAsync(ct);
        HealthReport report = await host.Services.GetRequiredService<HealthCheckService>().CheckHealthAsync(ct);
        Assert.Equal(HealthStatus.Healthy, report.Entries["vhost-user:EchoDevice"].Status);
        Assert.Equal(HealthStatus.Degraded, report.Entries["vhost-user:OtherDevice"].Status);
        using (VhostUserFrontend a = TestHost.ConnectAndNegotiate(first, expectedQueues: 1))
        using (VhostUserFrontend b = TestHost.ConnectAndNegotiate(second, expectedQueues: 2))
        {
            var other = host.Services.GetRequiredService<VhostUserBackendService<OtherDevice>>();
            await TestHost.WaitUntil(() => other.IsConnected, "the second daemon to see its front-end");
            report = await host.Services.GetRequiredService<HealthCheckService>().CheckHealthAsync(ct);
            Assert.Equal(HealthStatus.Healthy, report.Entries["vhost-user:OtherDevice"].Status);
        }

        await host.StopAsync(ct);
        Assert.False(File.Exists(first));
        Assert.False(File.Exists(second));
    }

    [Fact]
    public void RegisteringTheSameDeviceTwice_AddsOneHostedService()
    {
        var services = new ServiceCollection();
        services.AddVhostUserBackend<EchoDevice>(o => o.SocketPath = "/tmp/a.sock");
        services.AddVhostUserBackend<EchoDevice>(o => o.DegradedWhenIdle = true);
        using ServiceProvider provider = services.AddLogging().BuildServiceProvider();
        Assert.Single(provider.GetServices<IHostedService>().OfType<VhostUserBackendService<EchoDevice>>());
        VhostUserBackendOptions options = provider.GetRequiredService<IOptionsMonitor<VhostUserBackendOptions>>().Get(VhostUserBackendService<EchoDevice>.OptionsName);
        Assert.Equal("/tmp/a.sock", options.SocketPath);
        Assert.True(options.DegradedWhenIdle);
    }

    [Fact]
    public async Task DaemonOptions_AreBoundFromConfiguration_AndTheDaemonAppliesThem()
    {
        // A peer allow-list naming another user: the daemon must refuse this process as its front-end.
        CancellationToken ct = TestContext.Current.CancellationToken;
        string path = TestHost.NewSocketPath();
        uint otherUid = OwnUid() + 1;
        var logs = new TestLogger();
        HostApplicationBuilder builder = TestHost.CreateBuilder(logs, new Dictionary<string, string?>
        {
            ["VhostUser:SocketPath"] = path,
            ["VhostUser:Daemon:AllowedPeerUserIds:0"] = otherUid.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["VhostUser:Daemon:InFlightTimeout"] = "00:00:02",
            ["VhostUser:Daemon:MemoryFilePolicy"] = "RequireShrinkSeal",
        });
        builder.Services.AddVhostUserBackend<EchoDevice>(builder.Configuration.GetSection("VhostUser"));
        using IHost host = builder.Build();
        VhostUserDaemonOptions bound = host.Services.GetRequiredService<IOptionsMonitor<VhostUserBackendOptions>>().Get(VhostUserBackendService<EchoDevice>.OptionsName).Daemon;
        Assert.Equal([otherUid], bound.AllowedPeerUserIds);
        Assert.Null(bound.AllowedPeerGroupIds);
        Assert.Equal(TimeSpan.FromSeconds(2), bound.InFlightTimeout);
        Assert.Equal(GuestMemoryFilePolicy.RequireShrinkSeal, bound.MemoryFilePolicy);

        await host.StartAsync(ct);
        using (VhostUserFrontend frontend = VhostUserFrontend.Connect(path, TimeSpan.FromSeconds(5)))
        {
            Assert.ThrowsAny<VhostException>(() => frontend.GetFeatures());
        }

        await TestHost.WaitUntil(() => logs.Lines.Any(l => l.Contains("front-end refused", StringComparison.Ordinal)), "the daemon to log the refused peer");
        Assert.False(host.Services.GetRequiredService<VhostUserBackendService<EchoDevice>>().IsConnected);
        await host.StopAsync(ct);
    }

    private static uint OwnUid()
    {
        string line = File.ReadLines("/proc/self/status").First(l => l.StartsWith("Uid:", StringComparison.Ordinal));
        return uint.Parse(line.Split('\t', StringSplitOptions.RemoveEmptyEntries)[1], System.Globalization.CultureInfo.InvariantCulture);
    }
}
