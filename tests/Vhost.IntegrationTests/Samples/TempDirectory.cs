namespace Vhost.IntegrationTests.Samples;

/// <summary>A private temp folder (short path: Unix socket paths are limited to 107 bytes), removed on dispose.</summary>
internal sealed class TempDirectory : IDisposable
{
    private readonly DirectoryInfo _dir;

    public TempDirectory(string prefix) => _dir = Directory.CreateTempSubdirectory(prefix);

    public string Path => _dir.FullName;

    /// <summary>Creates a sparse file of <paramref name="size"/> bytes; returns its path.</summary>
    public string CreateFile(string name, long size)
    {
        string path = System.IO.Path.Combine(Path, name);
        using FileStream f = File.Create(path);
        f.SetLength(size);
        return path;
    }

    public void Dispose()
    {
        try
        {
            _dir.Delete(recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
