using Microsoft.Extensions.Options;

namespace VhostUserBackend.Hosting;

/// <summary>Validates <see cref="VhostUserBackendOptions"/> (run at host start through ValidateOnStart, and again by the service).</summary>
internal sealed class VhostUserBackendOptionsValidator : IValidateOptions<VhostUserBackendOptions>
{
    public ValidateOptionsResult Validate(string? name, VhostUserBackendOptions options) => Check(options);

    public static ValidateOptionsResult Check(VhostUserBackendOptions options)
    {
        if (string.IsNullOrWhiteSpace(options.SocketPath))
        {
            return ValidateOptionsResult.Fail($"{nameof(VhostUserBackendOptions.SocketPath)} is required: the Unix socket path the vhost-user daemon listens on");
        }

        return ValidateOptionsResult.Success;
    }
}
