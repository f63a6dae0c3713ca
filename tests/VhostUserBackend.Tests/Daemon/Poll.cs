namespace VhostUserBackend.Tests.Daemon;

/// <summary>Waiting in a test for something a daemon thread does.</summary>
internal static class Poll
{
    /// <summary>Polls <paramref name="condition"/> every millisecond; fails the test with <paramref name="message"/> after 5 s.</summary>
    public static void Until(Func<bool> condition, string message = "timed out")
    {
        long deadline = Environment.TickCount64 + 5000;
        while (!condition())
        {
            Assert.True(Environment.TickCount64 < deadline, message);
            Thread.Sleep(1);
        }
    }
}
