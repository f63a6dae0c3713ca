using Microsoft.Extensions.Options;

namespace VhostUserBackend.Hosting;

/// <summary>Validates <see cref="VhostUserBackendOptions"/> (run at host start through ValidateOnStart, and again by the service).</summary>
internal sealed class VhostUserBackendOptionsValidator : IValidateOptions<VhostUserBackendOptions>
{
    public ValidateOptionsResult Validate(string? name, VhostUserBackendOptions options) => Check(options);

    public static ValidateOptionsResult Check(VhostUserBackendOptions options) => Check(options, SystemdSocketActivation.IsActivated);

    /// <summary>The checks, with whether this process was socket-activated given (tests).</summary>
    internal static ValidateOptionsResult Check(VhostUserBackendOptions options, bool activated)
    {
        bool listen = !string.IsNullOrWhiteSpace(options.SocketPath);
        bool connect = !string.IsNullOrWhiteSpace(options.ConnectPath);
        if (listen && connect)
        {
            return ValidateOptionsResult.Fail($"{nameof(VhostUserBackendOptions.SocketPath)} (listen) and {nameof(VhostUserBackendOptions.ConnectPath)} (connect to a listening front-end) exclude each other");
        }

        if (!listen && !connect && !(options.SocketActivation && activated))
        {
            return ValidateOptionsResult.Fail($"{nameof(VhostUserBackendOptions.SocketPath)} is required (the Unix socket path the vhost-user daemon listens on), or {nameof(VhostUserBackendOptions.ConnectPath)} (a front-end's listening socket, client mode), unless systemd passes a socket ({nameof(VhostUserBackendOptions.SocketActivation)} with LISTEN_FDS set)");
        }

        if (options.Daemon is null)
        {
            return ValidateOptionsResult.Fail($"{nameof(VhostUserBackendOptions.Daemon)} must not be null");
        }

        try
        {
            options.Daemon.Validate();
        }
        catch (ArgumentException e)
        {
            return ValidateOptionsResult.Fail($"{nameof(VhostUserBackendOptions.Daemon)}: {e.Message}");
        }

        return ValidateOptionsResult.Success;
    }
}
