using Vhost.User;

namespace Vhost.Tests.User;

[Collection("FdCount")]
public sealed class ReconnectCycleTests
{
    [Fact]
    public void Thousand_connect_negotiate_disconnect_cycles_leak_no_fd()
    {
        string path = TestFds.SocketPath();
        int before = TestFds.Count();
        using (var listener = new VhostUserListener(path))
        using (var cts = new CancellationTokenSource())
        {
            Exception? serverError = null;
            int served = 0;
            var server = new Thread(() =>
            {
                try
                {
                    while (!cts.IsCancellationRequested)
                    {
                        VhostUserConnection? connection = listener.TryAccept(TimeSpan.FromMilliseconds(100)) is { } accepted ? new VhostUserConnection(accepted) : null;
                        if (connection is null)
                        {
                            continue;
                        }

                        using var handler = new RecordingBackendHandler();
                        using var dispatcher = new VhostUserBackendRequestDispatcher(connection, handler);
                        dispatcher.Run();
                        served++;
                    }
                }
                catch (Exception e)
                {
                    serverError = e;
                }
            })
            { IsBackground = true };
            server.Start();

            for (int i = 0; i < 1000; i++)
            {
                using var fe = VhostUserFrontend.Connect(path, TimeSpan.FromSeconds(2));
                ulong features = fe.GetFeatures();
                fe.SetFeatures(features);
                fe.SetProtocolFeatures(fe.GetProtocolFeatures());
                fe.SetOwner();
            }

            cts.Cancel();
            Assert.True(server.Join(5000));
            Assert.Null(serverError);
            Assert.Equal(1000, served);
        }

        Assert.Equal(before, TestFds.Count());
    }
}
