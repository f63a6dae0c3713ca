using Vhost.Fuzz;

namespace Vhost.HostileTests.Fuzz;

/// <summary>Finds the seed corpora and regression inputs in the repository's fuzz/ folder.</summary>
internal static class FuzzInputs
{
    public static string FuzzRoot { get; } = FindFuzzRoot();

    /// <summary>Every (target, file) of fuzz/corpus/TARGET and fuzz/regressions/TARGET.</summary>
    public static IEnumerable<(string Target, string Path)> All()
    {
        foreach (string target in FuzzTargets.Names)
        {
            foreach (string folder in new[] { "corpus", "regressions" })
            {
                string dir = Path.Combine(FuzzRoot, folder, target);
                if (!Directory.Exists(dir))
                {
                    continue;
                }

                foreach (string file in Directory.GetFiles(dir).Order(StringComparer.Ordinal))
                {
                    if (!Path.GetFileName(file).StartsWith('.') && !file.EndsWith(".md", StringComparison.Ordinal))
                    {
                        yield return (target, file);
                    }
                }
            }
        }
    }

    private static string FindFuzzRoot()
    {
        for (DirectoryInfo? d = new(AppContext.BaseDirectory); d is not null; d = d.Parent)
        {
            string candidate = Path.Combine(d.FullName, "fuzz", "corpus");
            if (Directory.Exists(candidate))
            {
                return Path.Combine(d.FullName, "fuzz");
            }
        }

        throw new DirectoryNotFoundException($"no fuzz/corpus above {AppContext.BaseDirectory}");
    }
}
