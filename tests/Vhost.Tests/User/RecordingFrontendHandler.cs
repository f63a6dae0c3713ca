using Microsoft.Win32.SafeHandles;
using Vhost.User;
using Vhost.User.Messages;

namespace Vhost.Tests.User;

/// <summary>A front-end handler for back-end requests that records calls and keeps received fds.</summary>
internal sealed class RecordingFrontendHandler : IVhostUserFrontendRequestHandler, IDisposable
{
    private readonly List<string> _calls = [];

    public List<SafeFileHandle> Fds { get; } = [];

    public Errno? FailNext { get; set; }

    public SafeFileHandle? LookupResult { get; set; }

    public string[] Calls
    {
        get
        {
            lock (_calls)
            {
                return [.. _calls];
            }
        }
    }

    private void Record(string call)
    {
        lock (_calls)
        {
            _calls.Add(call);
        }

        if (FailNext is { } errno)
        {
            FailNext = null;
            throw new VhostException(errno, call);
        }
    }

    public void IotlbMessage(in VhostUserIotlbMessage m) => Record($"IotlbMessage {m.Type} {m.Iova:x} {m.Permission}");
    public void ConfigChange() => Record("ConfigChange");

    public void VringHostNotifier(in VhostUserVringArea area, ReceivedFds fds)
    {
        Record($"VringHostNotifier {area.QueueIndex} {area.HasNoFd} {area.Size:x} {area.Offset:x}");
        if (fds.Count > 0)
        {
            Fds.Add(fds.Take(0));
        }
    }

    public void VringCall(int queueIndex) => Record($"VringCall {queueIndex}");
    public void VringError(int queueIndex) => Record($"VringError {queueIndex}");
    public void SharedObjectAdd(Guid uuid) => Record($"SharedObjectAdd {uuid}");
    public void SharedObjectRemove(Guid uuid) => Record($"SharedObjectRemove {uuid}");
    public SafeFileHandle? SharedObjectLookup(Guid uuid) { Record($"SharedObjectLookup {uuid}"); return LookupResult is null ? null : Fd.Duplicate(LookupResult); }

    public void ShmemMap(in VhostUserShmemMap map, ReceivedFds fds)
    {
        Record($"ShmemMap {map.ShmemId} {map.FdOffset:x} {map.ShmemOffset:x} {map.Length:x} {map.Flags}");
        Fds.Add(fds.Take(0));
    }

    public void ShmemUnmap(in VhostUserShmemMap map) => Record($"ShmemUnmap {map.ShmemId} {map.ShmemOffset:x} {map.Length:x}");

    public void Dispose()
    {
        foreach (var fd in Fds)
        {
            fd.Dispose();
        }

        LookupResult?.Dispose();
    }
}
