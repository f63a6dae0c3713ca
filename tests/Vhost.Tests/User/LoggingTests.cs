using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Vhost.User;
using Vhost.User.Messages;

namespace Vhost.Tests.User;

/// <summary>The protocol code logs connection, negotiation and error points, and nothing above Debug per data message.</summary>
[Collection("FdCount")]
public sealed class LoggingTests
{
    [Fact]
    public void Negotiation_and_a_protocol_error_are_logged_on_both_sides()
    {
        var frontendLog = new TestLogger(LogLevel.Information);
        var backendLog = new TestLogger(LogLevel.Information);
        var handler = new RecordingBackendHandler();
        (VhostUserConnection a, VhostUserConnection b) = VhostUserConnection.CreatePair();
        using var fe = new VhostUserFrontend(a, frontendLog);
        using var dispatcher = new VhostUserBackendRequestDispatcher(b, handler, backendLog);
        Exception? runError = null;
        var thread = new Thread(() =>
        {
            try
            {
                dispatcher.Run();
            }
            catch (Exception e)
            {
                runError = e;
            }
        })
        { IsBackground = true };
        thread.Start();
        using (handler)
        {
            ulong features = fe.GetFeatures();
            fe.SetFeatures(features);
            fe.SetProtocolFeatures(fe.GetProtocolFeatures() & ~VhostUserProtocolFeatures.InbandNotifications);
            fe.SetOwner();

            // An unknown request code is logged (a warning) and serving goes on; a protocol error
            // (a header with the wrong version) ends the dispatcher's loop, logged as an error.
            fe.Connection.Send(999, VhostUserHeaderFlags.None, ReadOnlySpan<byte>.Empty);
            fe.Connection.SendRaw([1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0]);
            Assert.True(thread.Join(5000));
        }

        Assert.IsType<VhostUserProtocolException>(runError);
        LogEntry[] fl = frontendLog.Entries;
        Assert.Contains(fl, e => e.EventId == 23 && e.Level == LogLevel.Information && e.Message.Contains($"0x{RecordingBackendHandler.OfferedFeatures:x}", StringComparison.Ordinal));
        Assert.Contains(fl, e => e.EventId == 26 && e.Message.Contains("protocol features acked", StringComparison.Ordinal));
        LogEntry[] bl = backendLog.Entries;

        // The negotiation, by name, once both sides of it are known (this front-end sets the
        // features before the protocol features); the per-message acked lines are Debug.
        LogEntry negotiated = Assert.Single(bl, e => e.EventId == 14);
        Assert.Equal(LogLevel.Information, negotiated.Level);
        Assert.Contains("Version1", negotiated.Message, StringComparison.Ordinal);
        Assert.Contains("protocol features: MQ", negotiated.Message, StringComparison.Ordinal);
        Assert.Contains(bl, e => e.EventId == 11 && e.Level == LogLevel.Warning && e.Message.Contains("request code 999 is unknown", StringComparison.Ordinal));
        Assert.Contains(bl, e => e.EventId == 5 && e.Level == LogLevel.Error);
        Assert.DoesNotContain(bl, e => e.Level < LogLevel.Information);
    }

    [Fact]
    public void Data_messages_log_nothing_above_debug()
    {
        var frontendLog = new TestLogger(LogLevel.Trace);
        var backendLog = new TestLogger(LogLevel.Trace);
        var handler = new RecordingBackendHandler();
        (VhostUserConnection a, VhostUserConnection b) = VhostUserConnection.CreatePair();
        using var fe = new VhostUserFrontend(a, frontendLog);
        using var dispatcher = new VhostUserBackendRequestDispatcher(b, handler, backendLog);
        var thread = new Thread(() =>
        {
            try
            {
                dispatcher.Run();
            }
            catch (VhostUserException)
            {
            }
        })
        { IsBackground = true };
        thread.Start();
        using (handler)
        {
            fe.SetFeatures(fe.GetFeatures());
            fe.GetProtocolFeatures();
            fe.SetProtocolFeatures(VhostUserProtocolFeatures.InbandNotifications | VhostUserProtocolFeatures.ReplyAck | VhostUserProtocolFeatures.BackendRequest);
            // The back-end may still be logging the end of the negotiation on its own thread:
            // start counting once both logs have been quiet for a moment.
            int frontendBefore = WaitQuiet(frontendLog), backendBefore = WaitQuiet(backendLog);
            for (int i = 0; i < 50; i++)
            {
                fe.VringKick(0);
            }

            WaitQuiet(frontendLog);
            WaitQuiet(backendLog);

            LogEntry[] fl = frontendLog.Entries[frontendBefore..];
            LogEntry[] bl = backendLog.Entries[backendBefore..];
            Assert.Equal(50, fl.Length);
            Assert.Equal(50, bl.Length);
            Assert.All(fl, e => Assert.Equal(LogLevel.Debug, e.Level));
            Assert.All(bl, e => Assert.Equal(LogLevel.Debug, e.Level));
            fe.Dispose();
            Assert.True(thread.Join(5000));
        }
    }

    [Fact]
    public void A_disabled_per_message_log_call_allocates_nothing()
    {
        ILogger disabled = new TestLogger(LogLevel.Information);
        VhostUserLogging.RequestSent(disabled, FrontendRequest.VringKick, 8, 0);
        VhostUserLogging.RequestReceived(disabled, 35, 8, 0);
        VhostUserLogging.BackendRequestSent(NullLogger.Instance, BackendRequest.VringCall, 8);
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 1000; i++)
        {
            VhostUserLogging.RequestSent(disabled, FrontendRequest.VringKick, 8, 0);
            VhostUserLogging.RequestReceived(disabled, 35, 8, 0);
            VhostUserLogging.BackendRequestReceived(disabled, 4, 8, 0);
            VhostUserLogging.BackendRequestSent(NullLogger.Instance, BackendRequest.VringCall, 8);
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    /// <summary>Waits until <paramref name="log"/> has taken no entry for 100 ms (at most 5 s) and returns its count.</summary>
    private static int WaitQuiet(TestLogger log)
    {
        int count = log.Entries.Length;
        long deadline = Environment.TickCount64 + 5000;
        while (Environment.TickCount64 < deadline)
        {
            Thread.Sleep(100);
            int now = log.Entries.Length;
            if (now == count)
            {
                break;
            }

            count = now;
        }

        return count;
    }
}
