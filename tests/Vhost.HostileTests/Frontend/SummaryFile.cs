namespace Vhost.HostileTests.Frontend;

/// <summary>Appends suite summaries to <c>hostile-summary.txt</c> beside the test assembly (or <c>VHOST_HOSTILE_SUMMARY</c>).</summary>
internal static class SummaryFile
{
    private static readonly Lock Gate = new();

    public static string Path => Environment.GetEnvironmentVariable("VHOST_HOSTILE_SUMMARY") is { Length: > 0 } p ? p : System.IO.Path.Combine(AppContext.BaseDirectory, "hostile-summary.txt");

    public static void Append(string text)
    {
        lock (Gate)
        {
            File.AppendAllText(Path, $"[{DateTime.UtcNow:u}]\n{text}\n");
        }
    }
}
