using System.Runtime.InteropServices;

namespace Vhost.TestSupport;

/// <summary>
/// What the EINTR tests need to deliver a real signal to a thread blocked in a system call
/// (linked into Vhost.Tests and VhostUserBackend.Tests, whose assemblies compile different parts of
/// the interop layer): the thread id and <c>tgkill</c>, declared here so no library carries them.
/// </summary>
internal static partial class ThreadSignals
{
    /// <summary><c>SIGWINCH</c> (the same number on x86_64 and aarch64).</summary>
    public const int SIGWINCH = 28;

    /// <summary>How long a signal test waits for a step.</summary>
    public static readonly TimeSpan Patience = TimeSpan.FromSeconds(5);

    /// <summary><c>gettid(2)</c>: the kernel id of the calling thread.</summary>
    [LibraryImport("libc", EntryPoint = "gettid")]
    public static partial int gettid();

    /// <summary><c>tgkill(2)</c>: sends <paramref name="sig"/> to one thread of a thread group.</summary>
    [LibraryImport("libc", EntryPoint = "tgkill", SetLastError = true)]
    public static partial int tgkill(int tgid, int tid, int sig);
}

/// <summary>Installs a SIGWINCH handler (ignored action) and counts deliveries.</summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
internal sealed class SignalCounter : IDisposable
{
    private readonly PosixSignalRegistration _registration;
    private int _count;

    public SignalCounter()
    {
        _registration = PosixSignalRegistration.Create(PosixSignal.SIGWINCH, context =>
        {
            context.Cancel = true;
            Interlocked.Increment(ref _count);
        });
    }

    public void WaitForAtLeast(int count)
        => Assert.True(SpinWait.SpinUntil(() => Volatile.Read(ref _count) >= count, ThreadSignals.Patience), "SIGWINCH was not delivered");

    public void Dispose() => _registration.Dispose();
}

/// <summary>Runs a blocking call on a dedicated thread whose kernel thread id is known.</summary>
internal sealed class BlockedCall<T>
{
    private readonly TaskCompletionSource<int> _tid = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource<T> _result = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public BlockedCall(Func<T> call)
    {
        var thread = new Thread(() =>
        {
            _tid.SetResult(ThreadSignals.gettid());
            try
            {
                _result.SetResult(call());
            }
            catch (Exception e)
            {
                _result.SetException(e);
            }
        })
        {
            IsBackground = true,
            Name = "blocked-call",
        };
        thread.Start();
        Assert.True(_tid.Task.Wait(ThreadSignals.Patience));
    }

    public bool IsCompleted => _result.Task.IsCompleted;

    /// <summary>Waits for the call to finish and returns its result (rethrowing its exception).</summary>
    public T Result(string failure)
    {
        Assert.True(_result.Task.Wait(ThreadSignals.Patience), failure);
        return _result.Task.GetAwaiter().GetResult();
    }

    public int ThreadId => _tid.Task.Result;

    /// <summary>Waits until the thread sits in one of <paramref name="syscalls"/> on <paramref name="fd"/> (from /proc/self/task/TID/syscall).</summary>
    public void WaitUntilInSyscall(long[] syscalls, SafeHandle fd)
    {
        long expectedFd = fd.DangerousGetHandle();
        string path = $"/proc/self/task/{ThreadId}/syscall";
        string last = string.Empty;
        bool inCall = SpinWait.SpinUntil(
            () =>
            {
                if (_result.Task.IsCompleted)
                {
                    return true;
                }

                last = File.ReadAllText(path).Trim();
                string[] parts = last.Split(' ');
                return parts.Length > 1
                    && long.TryParse(parts[0], out long number) && syscalls.Contains(number)
                    && Convert.ToInt64(parts[1], 16) == expectedFd;
            },
            ThreadSignals.Patience);
        if (_result.Task.IsCompleted)
        {
            Assert.Fail($"the call returned instead of blocking in syscall {string.Join("/", syscalls)}: "
                + (_result.Task.IsFaulted ? _result.Task.Exception!.InnerException!.ToString() : _result.Task.Result?.ToString()));
        }

        Assert.True(inCall, $"thread {ThreadId} never blocked in syscall {string.Join("/", syscalls)} on fd {expectedFd}; last: {last}");
    }

    public void Signal()
        => Assert.Equal(0, ThreadSignals.tgkill(Environment.ProcessId, ThreadId, ThreadSignals.SIGWINCH));
}
