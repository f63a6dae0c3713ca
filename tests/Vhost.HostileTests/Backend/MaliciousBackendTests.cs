using System.Diagnostics;
using Microsoft.Win32.SafeHandles;
using Vhost.HostileTests.Frontend;
using Vhost.User;
using Vhost.User.Messages;

namespace Vhost.HostileTests.Backend;

/// <summary>
/// VhostUserFrontend against a malicious back-end: for each request with a reply and each kind of
/// misbehaviour, the call ends with a <see cref="VhostUserException"/> within the reply timeout,
/// no other exception type, no hang, no fd leak.
/// </summary>
[Collection("FdCount")]
public sealed class MaliciousBackendTests(ITestOutputHelper output)
{
    private static readonly TimeSpan ReplyTimeout = TimeSpan.FromMilliseconds(300);

    /// <summary>The calls a front-end makes that read a reply, each after the set-up it needs.</summary>
    private static readonly (FrontendRequest Request, Action<VhostUserFrontend> Call)[] Calls =
    [
        (FrontendRequest.GetFeatures, f => f.GetFeatures()),
        (FrontendRequest.GetProtocolFeatures, f => { f.GetFeatures(); f.GetProtocolFeatures(); }),
        (FrontendRequest.GetQueueNum, f => { Negotiate(f); f.GetQueueNum(); }),
        (FrontendRequest.GetMaxMemSlots, f => { Negotiate(f); f.GetMaxMemorySlots(); }),
        (FrontendRequest.GetConfig, f => { Negotiate(f); f.GetConfig(0, 16, VhostUserConfigFlags.None); }),
        (FrontendRequest.GetVringBase, f => { Negotiate(f); f.GetVringBase(0); }),
        (FrontendRequest.GetVringBaseSkipDrain, f => { Negotiate(f); f.GetVringBaseSkipDrain(0); }),
        (FrontendRequest.GetStatus, f => { Negotiate(f); f.GetStatus(); }),
        (FrontendRequest.GetInflightFd, f => { Negotiate(f); using SafeFileHandle h = f.GetInflightFd(2, 64, out _); }),
        (FrontendRequest.SetOwner, f => { Negotiate(f); f.SetOwner(); }),
        (FrontendRequest.SetVringNum, f => { Negotiate(f); f.SetVringNum(0, 64); }),
    ];

    /// <summary>Misbehaviours: name → what the back-end does instead of the honest reply.</summary>
    internal static readonly (string Name, Action<VhostUserMessage, VhostUserConnection> Act)[] Misbehaviours =
    [
        ("wrong request code", (m, c) => MaliciousBackend.Reply(c, m.Header.Request + 1, 5, MaliciousBackend.U64(0))),
        ("no reply flag", (m, c) => MaliciousBackend.Reply(c, m.Header.Request, 1, MaliciousBackend.U64(0))),
        ("version 0", (m, c) => MaliciousBackend.Reply(c, m.Header.Request, 4, MaliciousBackend.U64(0))),
        ("version 3 and reserved flags", (m, c) => MaliciousBackend.Reply(c, m.Header.Request, 0xfffffff7, MaliciousBackend.U64(0))),
        ("payload one byte short", (m, c) => MaliciousBackend.Reply(c, m.Header.Request, 5, new byte[Math.Max(0, ExpectedSize(m) - 1)])),
        ("payload one byte long", (m, c) => MaliciousBackend.Reply(c, m.Header.Request, 5, new byte[ExpectedSize(m) + 1])),
        ("size field over the limit", (m, c) => MaliciousBackend.Reply(c, m.Header.Request, 5, new byte[8], size: 0x100000)),
        ("size larger than sent, then silence", (m, c) => MaliciousBackend.Reply(c, m.Header.Request, 5, new byte[8], size: 64)),
        ("absurd u64 value", (m, c) => MaliciousBackend.Reply(c, m.Header.Request, 5, AllOnes(ExpectedSize(m)))),
        ("stray fds on the reply", (m, c) =>
        {
            using var a = Kit.MemFd(4096);
            using var b = Kit.EventFd();
            MaliciousBackend.Reply(c, m.Header.Request, 5, new byte[ExpectedSize(m)], null, a, b);
        }),
        ("close before replying", (_, c) => c.Shutdown()),
        ("close mid-reply (header only)", (m, c) =>
        {
            MaliciousBackend.Reply(c, m.Header.Request, 5, ReadOnlySpan<byte>.Empty, size: (uint)ExpectedSize(m));
            c.Shutdown();
        }),
        ("close mid-header", (m, c) =>
        {
            c.SendRaw(HostileSession.Header(m.Header.Request, 5, 8).AsSpan(0, 5));
            c.Shutdown();
        }),
        ("no reply at all", (_, _) => { }),
        ("flood of 1 000 unsolicited messages", (m, c) =>
        {
            for (int i = 0; i < 1000; i++)
            {
                MaliciousBackend.Reply(c, (uint)BackendRequest.ConfigChangeMsg, 1, new byte[8]);
            }
        }),
        ("oversize garbage", (_, c) => c.SendRaw(Enumerable.Repeat((byte)0xff, 64 * 1024).ToArray())),
    ];

    public static TheoryData<int> CallIndices()
    {
        var d = new TheoryData<int>();
        for (int i = 0; i < Calls.Length; i++)
        {
            d.Add(i);
        }

        return d;
    }

    [Theory]
    [MemberData(nameof(CallIndices))]
    public void Every_misbehaviour_ends_in_a_clear_error_in_time_without_fd_leaks(int callIndex)
    {
        (FrontendRequest request, Action<VhostUserFrontend> call) = Calls[callIndex];
        var failures = new List<string>();
        int tried = 0;
        int accepted = 0;
        foreach ((string name, Action<VhostUserMessage, VhostUserConnection> act) in Misbehaviours)
        {
            tried++;
            int before = OpenFds.Count();
            var clock = Stopwatch.StartNew();
            Exception? error = null;
            using (var evil = new MaliciousBackend(request, act))
            {
                using VhostUserFrontend f = VhostUserFrontend.Connect(evil.SocketPath, TimeSpan.FromSeconds(5));
                f.ReplyTimeout = ReplyTimeout;
                try
                {
                    call(f);
                }
                catch (Exception e)
                {
                    error = e;
                }
            }

            long ms = clock.ElapsedMilliseconds;
            int after = OpenFds.Count();
            if (error is null)
            {
                // Accepted: only fine when the misbehaviour left the reply well-formed (an absurd feature/status bit pattern, a flood of legal messages).
                accepted++;
                if (name is not ("absurd u64 value" or "flood of 1 000 unsolicited messages" or "stray fds on the reply" or "no reply flag" or "version 3 and reserved flags"))
                {
                    failures.Add($"{request} / {name}: accepted");
                }
            }
            else if (error is not (VhostUserException or NotSupportedException or InvalidDataException))
            {
                failures.Add($"{request} / {name}: {error.GetType().Name}: {error.Message}");
            }

            if (ms > ReplyTimeout.TotalMilliseconds + 3000)
            {
                failures.Add($"{request} / {name}: took {ms} ms");
            }

            if (after > before)
            {
                failures.Add($"{request} / {name}: fds {before} -> {after}");
            }
        }

        string line = $"frontend vs malicious back-end, {request}: tried {tried}, clear errors {tried - accepted}, accepted {accepted}, failures {failures.Count}";
        output.WriteLine(line);
        SummaryFile.Append(line + (failures.Count > 0 ? "\n  " + string.Join("\n  ", failures) : string.Empty));
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    private static void Negotiate(VhostUserFrontend f)
    {
        ulong offered = f.GetFeatures();
        VhostUserProtocolFeatures p = f.GetProtocolFeatures();
        f.SetProtocolFeatures(p & MaliciousBackend.OfferedProtocol);
        f.SetFeatures(offered & MaliciousBackend.Offered);
    }

    private static int ExpectedSize(VhostUserMessage m) => (FrontendRequest)m.Header.Request switch
    {
        FrontendRequest.GetConfig => m.Body.Length,
        FrontendRequest.GetInflightFd => 24,
        FrontendRequest.GetVringBase or FrontendRequest.GetVringBaseSkipDrain => 8,
        _ => 8,
    };

    private static byte[] AllOnes(int n) => Enumerable.Repeat((byte)0xff, n).ToArray();
}
