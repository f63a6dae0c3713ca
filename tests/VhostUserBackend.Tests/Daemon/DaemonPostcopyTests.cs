using System.Buffers.Binary;
using Microsoft.Win32.SafeHandles;
using Vhost;
using Vhost.User;
using Vhost.User.Messages;

namespace VhostUserBackend.Tests.Daemon;

/// <summary>
/// Postcopy through the daemon, with this test playing QEMU's destination: it takes the
/// userfaultfd, gets the daemon's mapping addresses, punches a page out of guest memory (a page
/// that "has not arrived"), and resolves the worker's fault the way QEMU does: reads the fault,
/// translates it, places the page in the shared file and wakes the worker.
/// </summary>
public sealed class DaemonPostcopyTests
{
    private const int Page = 4096;

    [Fact]
    public void A_worker_faulting_on_a_missing_page_waits_for_the_front_end_while_the_control_thread_keeps_answering()
    {
        // The daemon needs a userfaultfd that handles kernel faults (root, CAP_SYS_PTRACE,
        // vm.unprivileged_userfaultfd=1 or /dev/userfaultfd access); without one ADVISE is refused.
        try
        {
            UserFaultFd.Open().Dispose();
        }
        catch (VhostException e)
        {
            Assert.Skip("this process may not open a userfaultfd that handles kernel faults: " + e.Message);
        }

        var logs = new TestLogger();
        using var factory = logs;
        var device = new CopyDevice();
        using var daemon = new VhostUserDaemon(device, new VhostUserDaemonOptions { Postcopy = true }, factory);
        string path = DaemonRig.NewSocketPath();
        daemon.Start(path);
        using var rig = new DaemonRig(device, daemon, path);
        VhostUserFrontend f = rig.Connect(eventIdx: false, packed: false, extraProtocolFeatures: VhostUserProtocolFeatures.PageFault);

        // PAGEFAULT is offered, and CONFIGURE_MEM_SLOTS is not (the spec forbids the pair).
        Assert.True((rig.ProtocolFeatures & VhostUserProtocolFeatures.PageFault) != 0);
        Assert.Equal(VhostUserProtocolFeatures.None, f.GetProtocolFeatures() & VhostUserProtocolFeatures.ConfigureMemorySlots);

        using SafeFileHandle uffd = f.PostcopyAdvise();
        f.PostcopyListen();

        // QEMU's fault thread: every page that faults "arrives" (it is allocated in the shared
        // file through this process's mapping, its content unchanged) and the worker is woken;
        // the page under test is held until the test lets it go.
        ulong heldPage = ulong.MaxValue;
        using var heldFaulted = new ManualResetEventSlim();
        using var release = new ManualResetEventSlim();
        var faults = new System.Collections.Concurrent.ConcurrentQueue<ulong>();
        using var stop = new CancellationTokenSource();
        Exception? serverFailure = null;
        var server = new Thread(() =>
        {
            try
            {
                byte[] message = new byte[32];
                while (!stop.IsCancellationRequested)
                {
                    if (!UnixSocket.WaitReady(uffd, Interop.POLLIN, 50))
                    {
                        continue;
                    }

                    if (Fd.TryRead(uffd, message, out _) != 32 || message[0] != Interop.UFFD_EVENT_PAGEFAULT)
                    {
                        continue;
                    }

                    ulong address = BinaryPrimitives.ReadUInt64LittleEndian(message.AsSpan(16)) & ~(ulong)(Page - 1);
                    Assert.True(f.TryTranslatePostcopyAddress(address, out ulong gpa), $"fault at 0x{address:x} outside the reported mappings");
                    faults.Enqueue(gpa);
                    if (gpa == Volatile.Read(ref heldPage))
                    {
                        heldFaulted.Set();
                        release.Wait(stop.Token);
                    }
                    else
                    {
                        unsafe
                        {
                            fixed (byte* p = rig.Ram.GetSpan(gpa, sizeof(int)))
                            {
                                Interlocked.Add(ref *(int*)p, 0);
                            }
                        }
                    }

                    UserFaultFd.Wake(uffd, (nint)address, Page);
                }
            }
            catch (OperationCanceledException)
            {
            }
            catch (Exception e)
            {
                serverFailure = e;
            }
        });
        server.Start();
        try
        {
            rig.Start(eventIdx: false, packed: false);
            VhostUserMemoryRegion reported = Assert.Single(f.PostcopyRegions);
            Assert.NotEqual(rig.Ram.Regions[0].UserAddress, reported.UserAddress);
            logs.WaitFor("registered for missing-page faults");

            for (int i = 0; i < 8; i++)
            {
                rig.Submit(0, DaemonRig.Payload(i));
                rig.Complete(0);
            }

            // Slot 8's buffers sit in a page of the buffer area that no ring shares; the page goes
            // (it "has not arrived") after the request was written.
            RigQueue q = rig.Queues[0];
            byte[] payload = DaemonRig.Payload(8);
            rig.Submit(0, payload, kick: false);
            ulong input = q.BufferBase + (8 * 2 * RigQueue.SlotBytes);
            ulong page = input & ~(ulong)(Page - 1);
            Assert.True(page > q.BufferBase);
            Volatile.Write(ref heldPage, page);
            using (var scope = new Fd.HandleScope(rig.Ram.FileHandle))
            {
                ErrnoChecks.Check(Interop.fallocate(scope.Fd, Interop.FALLOC_FL_PUNCH_HOLE | Interop.FALLOC_FL_KEEP_SIZE, (long)(page - rig.Ram.Regions[0].GuestPhysicalAddress + rig.Ram.Regions[0].FileOffset), Page), "fallocate");
            }

            q.Kick.Signal();

            // The worker waits in the fault; the control thread answers all the while.
            Assert.True(heldFaulted.Wait(5000, TestContext.Current.CancellationToken), "the worker did not fault on the missing page");
            Assert.NotEqual(0UL, f.GetFeatures());
            Thread.Sleep(100);
            Assert.False(q.Driver.TryGetUsed(out _, out _));

            // The page arrives with the data the source had; the request completes with it.
            rig.Ram.Write(input, payload);
            release.Set();
            rig.Complete(0);
            Assert.Null(serverFailure);
        }
        finally
        {
            stop.Cancel();
            server.Join();
        }

        // END unregisters: a missing page is then an ordinary page again.
        f.PostcopyEnd();
        logs.WaitFor("postcopy: ended; 1 region(s) unregistered");
        rig.Submit(0, DaemonRig.Payload(9));
        rig.Complete(0);
    }
}
