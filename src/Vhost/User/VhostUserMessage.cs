using System.Runtime.InteropServices;
using Vhost.User.Messages;

namespace Vhost.User;

/// <summary>
/// One received message: its header, exactly <see cref="VhostUserHeader.Size"/> body bytes, and
/// the fds that came with the header. Disposing closes the fds nobody took.
/// </summary>
internal sealed class VhostUserMessage : IDisposable
{
    private readonly byte[] _body;

    internal VhostUserMessage(VhostUserHeader header, byte[] body, ReceivedFds fds)
    {
        Header = header;
        _body = body;
        Fds = fds;
    }

    /// <summary>The header.</summary>
    public VhostUserHeader Header { get; }

    /// <summary>The body bytes.</summary>
    public ReadOnlySpan<byte> Body => _body;

    /// <summary>The fds that arrived with the message.</summary>
    public ReceivedFds Fds { get; }

    /// <summary>Reads the body as <typeparamref name="T"/>; the body must be exactly its size.</summary>
    /// <typeparam name="T">A wire struct from <see cref="Messages"/>.</typeparam>
    /// <returns>The payload.</returns>
    /// <exception cref="VhostUserProtocolException">The body has another size.</exception>
    public T Read<T>()
        where T : unmanaged
    {
        int size = System.Runtime.CompilerServices.Unsafe.SizeOf<T>();
        if (_body.Length != size)
        {
            throw new VhostUserProtocolException(VhostUserViolation.InvalidMessage, $"request {Header.Request}: payload is {_body.Length} bytes, expected {size}");
        }

        return MemoryMarshal.Read<T>(_body);
    }

    /// <summary>Closes the fds nobody took.</summary>
    public void Dispose() => Fds.Dispose();
}
