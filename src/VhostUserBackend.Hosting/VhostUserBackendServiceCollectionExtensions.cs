using System.Diagnostics.CodeAnalysis;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using VhostUserBackend;
using VhostUserBackend.Hosting;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers vhost-user devices as hosted services of the .NET Generic Host.</summary>
public static class VhostUserBackendServiceCollectionExtensions
{
    /// <summary>
    /// Serves <typeparamref name="TDevice"/> with a <see cref="VhostUserDaemon"/> while the host runs
    /// (<see cref="VhostUserBackendService{TDevice}"/>), configured by <paramref name="configure"/>.
    /// </summary>
    /// <typeparam name="TDevice">The device: resolved from the container (registered as a singleton here unless it already is).</typeparam>
    /// <param name="services">The services.</param>
    /// <param name="configure">Sets the options (at least <see cref="VhostUserBackendOptions.SocketPath"/>).</param>
    /// <returns>The device's options builder, to chain more configuration or validation.</returns>
    /// <remarks>Also registers the health check <see cref="VhostUserBackendHealthCheck{TDevice}"/> (<c>AddHealthChecks()</c>) and validates the options when the host starts.</remarks>
    public static OptionsBuilder<VhostUserBackendOptions> AddVhostUserBackend<[DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicConstructors)] TDevice>(
        this IServiceCollection services, Action<VhostUserBackendOptions> configure)
        where TDevice : class, IVhostUserBackend
    {
        ArgumentNullException.ThrowIfNull(configure);
        return AddCore<TDevice>(services).Configure(configure);
    }

    /// <summary>
    /// Serves <typeparamref name="TDevice"/> with a <see cref="VhostUserDaemon"/> while the host runs,
    /// with options bound from <paramref name="configuration"/> (for example
    /// <c>builder.Configuration.GetSection("VhostUser")</c> holding <c>SocketPath</c>). The binding is
    /// source-generated: no reflection, safe under trimming and NativeAOT.
    /// </summary>
    /// <typeparam name="TDevice">The device: resolved from the container (registered as a singleton here unless it already is).</typeparam>
    /// <param name="services">The services.</param>
    /// <param name="configuration">The configuration section holding the <see cref="VhostUserBackendOptions"/> properties.</param>
    /// <returns>The device's options builder, to chain more configuration or validation.</returns>
    public static OptionsBuilder<VhostUserBackendOptions> AddVhostUserBackend<[DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicConstructors)] TDevice>(
        this IServiceCollection services, IConfiguration configuration)
        where TDevice : class, IVhostUserBackend
    {
        ArgumentNullException.ThrowIfNull(configuration);
        OptionsBuilder<VhostUserBackendOptions> builder = AddCore<TDevice>(services);
        services.Configure<VhostUserBackendOptions>(builder.Name, configuration);
        return builder;
    }

    private static OptionsBuilder<VhostUserBackendOptions> AddCore<[DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicConstructors)] TDevice>(IServiceCollection services)
        where TDevice : class, IVhostUserBackend
    {
        ArgumentNullException.ThrowIfNull(services);
        string name = VhostUserBackendService<TDevice>.OptionsName;
        bool first = !services.Any(d => d.ServiceType == typeof(VhostUserBackendService<TDevice>));
        if (first)
        {
            services.TryAddSingleton<TDevice>();
            services.AddSingleton(static sp => new VhostUserBackendService<TDevice>(
                sp.GetRequiredService<TDevice>(),
                sp.GetRequiredService<IOptionsMonitor<VhostUserBackendOptions>>(),
                sp.GetService<ILoggerFactory>()));
            services.AddHostedService(static sp => sp.GetRequiredService<VhostUserBackendService<TDevice>>());
            services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<VhostUserBackendOptions>, VhostUserBackendOptionsValidator>());
            services.AddHealthChecks().Add(new HealthCheckRegistration(
                VhostUserBackendService<TDevice>.HealthCheckName,
                static sp => new VhostUserBackendHealthCheck<TDevice>(
                    sp.GetRequiredService<VhostUserBackendService<TDevice>>(),
                    sp.GetRequiredService<IOptionsMonitor<VhostUserBackendOptions>>()),
                failureStatus: null,
                tags: ["vhost-user"]));
        }

        return services.AddOptions<VhostUserBackendOptions>(name).ValidateOnStart();
    }
}
