using System.Diagnostics.CodeAnalysis;

namespace Vhost.GuestHarness;

/// <summary>
/// One result line printed in the guest, in the harness's fixed format
/// <c>VHOSTTEST &lt;name&gt; PASS|FAIL|SKIP &lt;detail&gt;</c>. The name has no spaces; the detail
/// is free text (possibly empty). Shell scripts print these with <c>/run/vhosttest/lib.sh</c>;
/// a .NET program running in the guest prints <see cref="ToLine"/>.
/// </summary>
/// <param name="Name">The check's name (no whitespace).</param>
/// <param name="Status">The outcome.</param>
/// <param name="Detail">Free text: measured values, or why it failed or was skipped.</param>
public sealed record GuestTestResult(string Name, GuestTestStatus Status, string Detail)
{
    /// <summary>The prefix of every result line.</summary>
    public const string Prefix = "VHOSTTEST";

    /// <summary>The name given to a result synthesized from a line that starts with <see cref="Prefix"/> but does not parse.</summary>
    public const string MalformedName = "(malformed)";

    /// <summary>Formats this result as the line the host parses.</summary>
    /// <returns>For example <c>VHOSTTEST vhost-net-open PASS fd=5</c>.</returns>
    /// <exception cref="ArgumentException">The name is empty or contains whitespace, or the detail contains a line break.</exception>
    public string ToLine()
    {
        if (Name.Length == 0 || Name.Any(char.IsWhiteSpace))
        {
            throw new ArgumentException($"A guest result name must be non-empty and have no whitespace: '{Name}'.", nameof(Name));
        }

        if (Detail.Contains('\n') || Detail.Contains('\r'))
        {
            throw new ArgumentException("A guest result detail must be one line.", nameof(Detail));
        }

        string status = Status switch
        {
            GuestTestStatus.Pass => "PASS",
            GuestTestStatus.Fail => "FAIL",
            GuestTestStatus.Skip => "SKIP",
            _ => throw new ArgumentOutOfRangeException(nameof(Status), Status, "Unknown status."),
        };
        return Detail.Length == 0 ? $"{Prefix} {Name} {status}" : $"{Prefix} {Name} {status} {Detail}";
    }

    /// <summary>Parses a result line.</summary>
    /// <param name="line">One line of guest output, without its line break.</param>
    /// <param name="result">The parsed result, or <see langword="null"/>.</param>
    /// <returns><see langword="true"/> when <paramref name="line"/> is a well-formed result line.</returns>
    public static bool TryParse(string line, [NotNullWhen(true)] out GuestTestResult? result)
    {
        ArgumentNullException.ThrowIfNull(line);
        result = null;
        // "VHOSTTEST name STATUS[ detail]"; the control lines (VHOSTTEST-BEGIN/-END) have no space after the prefix.
        if (!line.StartsWith(Prefix + " ", StringComparison.Ordinal))
        {
            return false;
        }

        string[] parts = line.Substring(Prefix.Length + 1).Split(' ', 3);
        if (parts.Length < 2 || parts[0].Length == 0)
        {
            return false;
        }

        GuestTestStatus? status = parts[1] switch
        {
            "PASS" => GuestTestStatus.Pass,
            "FAIL" => GuestTestStatus.Fail,
            "SKIP" => GuestTestStatus.Skip,
            _ => null,
        };
        if (status is null)
        {
            return false;
        }

        result = new GuestTestResult(parts[0], status.Value, parts.Length == 3 ? parts[2] : string.Empty);
        return true;
    }

    /// <inheritdoc/>
    public override string ToString() => ToLine();
}
