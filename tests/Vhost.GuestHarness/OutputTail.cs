using System.Text;

namespace Vhost.GuestHarness;

/// <summary>Reads the lines QEMU appends to a serial-port log file as they arrive (complete lines only, <c>\r</c> dropped).</summary>
internal sealed class OutputTail
{
    private readonly string _path;
    private readonly StringBuilder _partial = new();
    private long _position;

    public OutputTail(string path) => _path = path;

    /// <summary>Appends the complete lines written since the last call to <paramref name="lines"/>.</summary>
    /// <param name="lines">Where the new lines go.</param>
    /// <param name="flush">Also hand out a last line that has no line break (the writer is gone).</param>
    public void ReadNew(List<string> lines, bool flush = false)
    {
        if (File.Exists(_path))
        {
            using var stream = new FileStream(_path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            if (stream.Length > _position)
            {
                stream.Position = _position;
                var buffer = new byte[stream.Length - _position];
                int read = stream.ReadAtLeast(buffer, buffer.Length, throwOnEndOfStream: false);
                _position += read;
                foreach (char c in Encoding.UTF8.GetString(buffer, 0, read))
                {
                    if (c == '\n')
                    {
                        lines.Add(_partial.ToString());
                        _partial.Clear();
                    }
                    else if (c != '\r')
                    {
                        _partial.Append(c);
                    }
                }
            }
        }

        if (flush && _partial.Length > 0)
        {
            lines.Add(_partial.ToString());
            _partial.Clear();
        }
    }
}
