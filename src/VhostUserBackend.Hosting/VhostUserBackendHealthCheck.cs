using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;

namespace VhostUserBackend.Hosting;

/// <summary>
/// The health of a hosted device (registered as <see cref="VhostUserBackendService{TDevice}.HealthCheckName"/>
/// with the tag <c>vhost-user</c>): <c>Healthy</c> while the daemon runs (serving a front-end or
/// listening for one; <c>Degraded</c> when idle if <see cref="VhostUserBackendOptions.DegradedWhenIdle"/>),
/// <c>Unhealthy</c> before start, after stop, and when it faulted (with the failure). The data holds
/// <c>state</c>, <c>socketPath</c>, <c>connected</c> and <c>connections</c>.
/// </summary>
/// <typeparam name="TDevice">The device.</typeparam>
public sealed class VhostUserBackendHealthCheck<TDevice> : IHealthCheck
    where TDevice : class, IVhostUserBackend
{
    private readonly VhostUserBackendService<TDevice> _service;
    private readonly IOptionsMonitor<VhostUserBackendOptions> _options;

    /// <summary>Creates the check for <paramref name="service"/>.</summary>
    /// <param name="service">The hosted service.</param>
    /// <param name="options">The options (for <see cref="VhostUserBackendOptions.DegradedWhenIdle"/>).</param>
    public VhostUserBackendHealthCheck(VhostUserBackendService<TDevice> service, IOptionsMonitor<VhostUserBackendOptions> options)
    {
        ArgumentNullException.ThrowIfNull(service);
        ArgumentNullException.ThrowIfNull(options);
        _service = service;
        _options = options;
    }

    /// <summary>Reports the service's state.</summary>
    /// <param name="context">The check's registration.</param>
    /// <param name="cancellationToken">Not used: the check does not block.</param>
    /// <returns>The result.</returns>
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        VhostUserBackendState state = _service.State;
        bool connected = _service.IsConnected;
        var data = new Dictionary<string, object>
        {
            ["state"] = state.ToString(),
            ["socketPath"] = _service.SocketPath ?? string.Empty,
            ["connected"] = connected,
            ["connections"] = _service.ConnectionCount,
        };
        string device = typeof(TDevice).Name;
        HealthCheckResult result = state switch
        {
            VhostUserBackendState.Running when connected
                => HealthCheckResult.Healthy($"{device} is serving a front-end on {_service.SocketPath}", data),
            VhostUserBackendState.Running when _options.Get(VhostUserBackendService<TDevice>.OptionsName).DegradedWhenIdle
                => HealthCheckResult.Degraded($"{device} is listening on {_service.SocketPath}; no front-end is connected", data: data),
            VhostUserBackendState.Running
                => HealthCheckResult.Healthy($"{device} is listening on {_service.SocketPath}; no front-end is connected", data),
            VhostUserBackendState.Faulted
                => new HealthCheckResult(context.Registration.FailureStatus, $"{device} failed: {_service.Failure?.Message}", _service.Failure, data),
            VhostUserBackendState.Stopped
                => new HealthCheckResult(context.Registration.FailureStatus, $"{device} was stopped", data: data),
            _ => new HealthCheckResult(context.Registration.FailureStatus, $"{device} has not started", data: data),
        };
        return Task.FromResult(result);
    }
}
