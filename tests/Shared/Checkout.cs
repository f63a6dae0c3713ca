namespace Vhost.TestSupport;

/// <summary>The repository checkout the tests were built from.</summary>
internal static class Checkout
{
    /// <summary>The directory holding Vhost.sln, found upwards from the test assembly's directory.</summary>
    /// <exception cref="InvalidOperationException">The tests do not run from a checkout's build output.</exception>
    public static string Root => Find() ?? throw new InvalidOperationException($"no Vhost.sln above {AppContext.BaseDirectory}");

    /// <summary>The directory holding Vhost.sln above the test assembly's directory, or null outside a checkout.</summary>
    /// <returns>The path or null.</returns>
    public static string? Find()
    {
        string? dir = AppContext.BaseDirectory;
        while (dir is not null && !File.Exists(Path.Combine(dir, "Vhost.sln")))
        {
            dir = Path.GetDirectoryName(dir);
        }

        return dir;
    }
}
