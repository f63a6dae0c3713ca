using Vhost.User;
using Vhost.User.Messages;

namespace Vhost.Tests.User;

/// <summary>A real front-end and a real dispatcher (on its own thread) over a socketpair.</summary>
internal sealed class ProtocolPair : IDisposable
{
    private readonly Thread _thread;

    public ProtocolPair(RecordingBackendHandler? handler = null, bool start = true)
    {
        Handler = handler ?? new RecordingBackendHandler();
        (VhostUserConnection a, VhostUserConnection b) = VhostUserConnection.CreatePair();
        Frontend = new VhostUserFrontend(a) { ReplyTimeout = TimeSpan.FromSeconds(5) };
        Dispatcher = new VhostUserBackendRequestDispatcher(b, Handler);
        _thread = new Thread(() =>
        {
            try
            {
                Dispatcher.Run();
            }
            catch (Exception e)
            {
                RunError = e;
            }
        })
        { IsBackground = true };
        if (start)
        {
            _thread.Start();
        }
    }

    public RecordingBackendHandler Handler { get; }

    public VhostUserFrontend Frontend { get; }

    public VhostUserBackendRequestDispatcher Dispatcher { get; }

    public Exception? RunError { get; private set; }

    /// <summary>Features, protocol features (all offered, or <paramref name="protocol"/>), owner.</summary>
    public void Negotiate(VhostUserProtocolFeatures? protocol = null)
    {
        ulong features = Frontend.GetFeatures();
        Frontend.SetFeatures(features);
        VhostUserProtocolFeatures offered = Frontend.GetProtocolFeatures();
        Frontend.SetProtocolFeatures(protocol ?? offered);
        Frontend.SetOwner();
    }

    /// <summary>Stops the dispatcher (by closing the front-end) and waits for it.</summary>
    public void Stop()
    {
        Frontend.Dispose();
        if (_thread.IsAlive)
        {
            Assert.True(_thread.Join(5000), "the dispatcher did not stop");
        }
    }

    public void Dispose()
    {
        Stop();
        Dispatcher.Dispose();
        Handler.Dispose();
    }
}
