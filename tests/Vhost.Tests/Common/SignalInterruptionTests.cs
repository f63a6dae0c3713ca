using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Vhost.Tests.Common;

/// <summary>
/// EINTR handling with a real signal delivered to the blocked thread: a SIGWINCH handler is
/// installed through <see cref="PosixSignalRegistration"/> and the signal is sent with
/// <c>tgkill</c> to the thread while it sits in the system call. The socket gets a receive
/// timeout (SO_RCVTIMEO) because Linux then fails the call with EINTR even when the handler was
/// installed with SA_RESTART; without it the kernel would restart the read itself and the
/// wrapper's retry loop would never run. The control test proves the setup really yields EINTR.
/// </summary>
[Collection("Signals")]
public sealed unsafe class SignalInterruptionTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(5);

    [Fact]
    public void Control_the_signal_interrupts_a_raw_read_with_EINTR()
    {
        using var signals = new SignalCounter();
        var (a, b) = UnixSocket.CreatePair();
        using (a)
        using (b)
        {
            SetReceiveTimeout(b, seconds: 30);
            var blocked = new BlockedCall<Errno>(() =>
            {
                byte* buffer = stackalloc byte[16];
                using var scope = new Fd.HandleScope(b);
                nint n = global::Interop.read(scope.Fd, buffer, 16);
                return n < 0 ? global::Interop.LastErrno : Errno.None;
            });

            blocked.WaitUntilInSyscall(ReadSyscall, b);
            blocked.Signal();
            Assert.Equal(Errno.EINTR, blocked.Result("the raw read was not interrupted"));
            signals.WaitForAtLeast(1);
        }
    }

    [Fact]
    public void Fd_Read_retries_EINTR_and_returns_the_data_that_arrives_later()
    {
        using var signals = new SignalCounter();
        var (a, b) = UnixSocket.CreatePair();
        using (a)
        using (b)
        {
            SetReceiveTimeout(b, seconds: 30);
            var buffer = new byte[16];
            var blocked = new BlockedCall<int>(() => Fd.Read(b, buffer));

            blocked.WaitUntilInSyscall(ReadSyscall, b);
            blocked.Signal();
            signals.WaitForAtLeast(1);

            // Interrupted, retried, and blocked again: still waiting for data.
            blocked.WaitUntilInSyscall(ReadSyscall, b);
            Assert.False(blocked.IsCompleted);

            Fd.Write(a, "hello"u8);
            Assert.Equal(5, blocked.Result("the read did not complete after the data arrived"));
            Assert.Equal("hello"u8.ToArray(), buffer[..5]);
        }
    }

    [Fact]
    public void ScmRights_TryReceive_retries_EINTR()
    {
        using var signals = new SignalCounter();
        var (a, b) = UnixSocket.CreatePair();
        using SafeFileHandle memfd = Fd.CreateMemFd("eintr", 0);
        using (a)
        using (b)
        {
            SetReceiveTimeout(b, seconds: 30);
            var received = new List<SafeFileHandle>();
            var buffer = new byte[16];
            var blocked = new BlockedCall<int>(() => ScmRights.TryReceive(b, buffer, received, out _));

            blocked.WaitUntilInSyscall(RecvmsgSyscall, b);
            blocked.Signal();
            signals.WaitForAtLeast(1);
            blocked.WaitUntilInSyscall(RecvmsgSyscall, b);
            Assert.False(blocked.IsCompleted);

            ScmRights.SendAll(a, "fd!"u8, [memfd]);
            Assert.Equal(3, blocked.Result("the receive did not complete after the message arrived"));
            Assert.Single(received);
            Assert.Equal(Fd.Stat(memfd).Inode, Fd.Stat(received[0]).Inode);
            received[0].Dispose();
        }
    }

    [Fact]
    public void Epoll_Wait_returns_zero_events_on_EINTR()
    {
        using var signals = new SignalCounter();
        using var epoll = new Epoll();
        var blocked = new BlockedCall<int>(() => epoll.Wait(new EpollEvent[4], -1));

        blocked.WaitUntilInSyscall(EpollWaitSyscalls, epoll.Handle);
        blocked.Signal();
        Assert.Equal(0, blocked.Result("epoll_wait was not interrupted"));
        signals.WaitForAtLeast(1);
    }

    private static long[] ReadSyscall => RuntimeInformation.ProcessArchitecture == Architecture.X64 ? [0] : [63];

    private static long[] RecvmsgSyscall => RuntimeInformation.ProcessArchitecture == Architecture.X64 ? [47] : [212];

    // epoll_wait, or epoll_pwait where the C library routes it there.
    private static long[] EpollWaitSyscalls => RuntimeInformation.ProcessArchitecture == Architecture.X64 ? [232, 281, 441] : [22, 441];

    private static void SetReceiveTimeout(SafeHandle socket, int seconds)
    {
        var tv = new global::Interop.timeval { tv_sec = seconds };
        using var scope = new Fd.HandleScope(socket);
        ErrnoChecks.Check(global::Interop.setsockopt(scope.Fd, global::Interop.SOL_SOCKET, global::Interop.SO_RCVTIMEO, &tv, (uint)sizeof(global::Interop.timeval)), "setsockopt(SO_RCVTIMEO)");
    }

    /// <summary>Installs a SIGWINCH handler (ignored action) and counts deliveries.</summary>
    private sealed class SignalCounter : IDisposable
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
            => Assert.True(SpinWait.SpinUntil(() => Volatile.Read(ref _count) >= count, Patience), "SIGWINCH was not delivered");

        public void Dispose() => _registration.Dispose();
    }

    /// <summary>Runs a blocking call on a dedicated thread whose kernel thread id is known.</summary>
    private sealed class BlockedCall<T>
    {
        private readonly TaskCompletionSource<int> _tid = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly TaskCompletionSource<T> _result = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public BlockedCall(Func<T> call)
        {
            var thread = new Thread(() =>
            {
                _tid.SetResult(global::Interop.gettid());
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
            Assert.True(_tid.Task.Wait(Patience));
        }

        public bool IsCompleted => _result.Task.IsCompleted;

        /// <summary>Waits for the call to finish and returns its result (rethrowing its exception).</summary>
        public T Result(string failure)
        {
            Assert.True(_result.Task.Wait(Patience), failure);
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
                Patience);
            if (_result.Task.IsCompleted)
            {
                Assert.Fail($"the call returned instead of blocking in syscall {string.Join("/", syscalls)}: "
                    + (_result.Task.IsFaulted ? _result.Task.Exception!.InnerException!.ToString() : _result.Task.Result?.ToString()));
            }

            Assert.True(inCall, $"thread {ThreadId} never blocked in syscall {string.Join("/", syscalls)} on fd {expectedFd}; last: {last}");
        }

        public void Signal()
            => Assert.Equal(0, global::Interop.tgkill(Environment.ProcessId, ThreadId, global::Interop.SIGWINCH));
    }
}
