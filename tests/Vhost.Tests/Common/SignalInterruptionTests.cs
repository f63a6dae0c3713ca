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

    private static long[] ReadSyscall => RuntimeInformation.ProcessArchitecture == Architecture.X64 ? [0] : [63];

    private static long[] RecvmsgSyscall => RuntimeInformation.ProcessArchitecture == Architecture.X64 ? [47] : [212];

    private static void SetReceiveTimeout(SafeHandle socket, int seconds)
    {
        var tv = new global::Interop.timeval { tv_sec = seconds };
        using var scope = new Fd.HandleScope(socket);
        ErrnoChecks.Check(global::Interop.setsockopt(scope.Fd, global::Interop.SOL_SOCKET, global::Interop.SO_RCVTIMEO, &tv, (uint)sizeof(global::Interop.timeval)), "setsockopt(SO_RCVTIMEO)");
    }
}
