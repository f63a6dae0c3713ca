using Microsoft.Win32.SafeHandles;

namespace Vhost.Tests.Common;

[Collection("FdCount")]
public sealed class UnixSocketLeakTests
{
    [Fact]
    public void Failed_listens_and_connects_close_their_socket()
    {
        string path = Path.Combine(Path.GetTempPath(), $"vhost-{Guid.NewGuid():N}.sock");
        try
        {
            int before = OpenFds.Count();
            for (int i = 0; i < 20; i++)
            {
                Assert.Throws<VhostException>(() => UnixSocket.Connect(path));
            }

            using (SafeFileHandle listener = UnixSocket.Listen(path))
            {
                Assert.Throws<VhostException>(() => UnixSocket.Listen(path));
                Assert.Null(UnixSocket.Accept(listener, 0));
                using SafeFileHandle client = UnixSocket.Connect(path);
                using SafeFileHandle? server = UnixSocket.Accept(listener, 5000);
                Assert.NotNull(server);
            }

            Assert.Equal(before, OpenFds.Count());
        }
        finally
        {
            File.Delete(path);
        }
    }
}
