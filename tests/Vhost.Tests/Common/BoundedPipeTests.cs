using System.Diagnostics;
using Microsoft.Win32.SafeHandles;

namespace Vhost.Tests.Common;

/// <summary>The one-shot pipe transfer of the device state: bounded in size and in time, whatever the peer does.</summary>
public sealed class BoundedPipeTests
{
    [Fact]
    public void Content_written_then_closed_is_read_to_the_end()
    {
        (SafeFileHandle r, SafeFileHandle w) = BoundedPipe.Create();
        using (r)
        {
            byte[] content = [.. Enumerable.Range(0, 200_000).Select(i => (byte)i)];
            var writer = Task.Run(() =>
            {
                using (w)
                {
                    BoundedPipe.WriteAll(w, content, TimeSpan.FromSeconds(10));
                }
            });
            Assert.Equal(content, BoundedPipe.ReadToEnd(r, content.Length, TimeSpan.FromSeconds(10)));
            writer.GetAwaiter().GetResult();
            Assert.True(BoundedPipe.IsPipe(r));
        }
    }

    [Fact]
    public void More_than_the_bound_is_refused()
    {
        (SafeFileHandle r, SafeFileHandle w) = BoundedPipe.Create();
        using (r)
        using (w)
        {
            Fd.Write(w, new byte[100]);
            Assert.Throws<InvalidDataException>(() => BoundedPipe.ReadToEnd(r, 99, TimeSpan.FromSeconds(5)));
        }
    }

    [Fact]
    public void A_peer_that_never_closes_or_never_reads_times_out_and_cancellation_ends_the_wait()
    {
        (SafeFileHandle r, SafeFileHandle w) = BoundedPipe.Create();
        using (r)
        using (w)
        {
            var clock = Stopwatch.StartNew();
            Assert.Throws<TimeoutException>(() => BoundedPipe.ReadToEnd(r, 10, TimeSpan.FromMilliseconds(300)));
            Assert.InRange(clock.ElapsedMilliseconds, 250, 3000);

            // Nobody reads: the pipe fills, then the writer times out.
            Assert.Throws<TimeoutException>(() => BoundedPipe.WriteAll(w, new byte[4 << 20], TimeSpan.FromMilliseconds(300)));
        }

        (SafeFileHandle r2, SafeFileHandle w2) = BoundedPipe.Create();
        using (r2)
        using (w2)
        {
            using var cancel = new CancellationTokenSource(TimeSpan.FromMilliseconds(200));
            Assert.ThrowsAny<OperationCanceledException>(() => BoundedPipe.ReadToEnd(r2, 10, TimeSpan.FromMinutes(1), cancel.Token));
        }
    }

    [Fact]
    public void A_regular_file_is_not_a_pipe()
    {
        string path = Path.GetTempFileName();
        try
        {
            using SafeFileHandle f = File.OpenHandle(path);
            Assert.False(BoundedPipe.IsPipe(f));
        }
        finally
        {
            File.Delete(path);
        }
    }
}
