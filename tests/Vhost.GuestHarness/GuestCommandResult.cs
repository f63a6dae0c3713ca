namespace Vhost.GuestHarness;

/// <summary>What a command the guest agent ran produced.</summary>
/// <param name="Command">The command.</param>
/// <param name="ExitCode">Its exit status (126 when the agent could not decode it).</param>
/// <param name="Output">Its output lines, stdout and stderr merged.</param>
public sealed record GuestCommandResult(string Command, int ExitCode, IReadOnlyList<string> Output)
{
    /// <summary>The output as one string, lines joined with <c>\n</c>.</summary>
    public string Text => string.Join('\n', Output);

    /// <summary>The value of the first output line of the form <c>KEY=VALUE</c>, or <see langword="null"/>.</summary>
    /// <param name="key">The key.</param>
    /// <returns>The value.</returns>
    public string? Value(string key)
    {
        string prefix = key + "=";
        return Output.FirstOrDefault(l => l.StartsWith(prefix, StringComparison.Ordinal))?[prefix.Length..];
    }
}
