using Microsoft.Win32.SafeHandles;

namespace Vhost.User;

/// <summary>
/// The fds that arrived with one message. Each can be taken once (the taker owns it); disposing
/// closes every fd nobody took.
/// </summary>
public sealed class ReceivedFds : IDisposable
{
    private static readonly SafeFileHandle?[] s_none = [];
    private readonly SafeFileHandle?[] _fds;

    /// <summary>An empty set.</summary>
    public static ReceivedFds Empty => new(s_none);

    internal ReceivedFds(List<SafeFileHandle> fds)
        : this(fds.Count == 0 ? s_none : fds.ToArray())
    {
    }

    private ReceivedFds(SafeFileHandle?[] fds) => _fds = fds;

    /// <summary>The number of fds that arrived (taken or not).</summary>
    public int Count => _fds.Length;

    /// <summary>The number of fds not taken yet.</summary>
    public int Remaining
    {
        get
        {
            int n = 0;
            foreach (SafeFileHandle? fd in _fds)
            {
                if (fd is not null)
                {
                    n++;
                }
            }

            return n;
        }
    }

    /// <summary>Takes ownership of fd <paramref name="index"/>.</summary>
    /// <param name="index">The position of the fd in the message.</param>
    /// <returns>The fd; the caller must dispose it.</returns>
    /// <exception cref="ArgumentOutOfRangeException">No fd at that position.</exception>
    /// <exception cref="InvalidOperationException">The fd was already taken.</exception>
    public SafeFileHandle Take(int index)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, _fds.Length);
        SafeFileHandle fd = _fds[index] ?? throw new InvalidOperationException($"fd {index} of this message was already taken");
        _fds[index] = null;
        return fd;
    }

    /// <summary>Fd <paramref name="index"/> without taking it (<see langword="null"/> when absent or taken), for checks made before a handler takes it.</summary>
    internal SafeFileHandle? Peek(int index) => (uint)index < (uint)_fds.Length ? _fds[index] : null;

    /// <summary>Takes fd <paramref name="index"/> when it is there and not taken yet.</summary>
    /// <param name="index">The position of the fd.</param>
    /// <returns>The fd, or <see langword="null"/>.</returns>
    public SafeFileHandle? TryTake(int index)
    {
        if ((uint)index >= (uint)_fds.Length)
        {
            return null;
        }

        SafeFileHandle? fd = _fds[index];
        _fds[index] = null;
        return fd;
    }

    /// <summary>Closes every fd nobody took. Idempotent.</summary>
    public void Dispose()
    {
        for (int i = 0; i < _fds.Length; i++)
        {
            _fds[i]?.Dispose();
            _fds[i] = null;
        }
    }
}
