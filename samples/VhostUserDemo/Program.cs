using Vhost;
using Vhost.User;
using Vhost.User.Messages;
using VhostUserBackend.Testing;
using VhostUserDemo;

// A vhost-user frontend and a toy backend in one process, talking over a real Unix socket:
// negotiation, a memory table whose memfd crosses the socket with SCM_RIGHTS, kick and call
// eventfds handed over, and one kick answered by one call.
string socketPath = args.Length > 0 ? args[0] : Path.Combine(Path.GetTempPath(), $"vhost-user-demo-{Environment.ProcessId}.sock");
Console.WriteLine($"vhost-user demo on {socketPath}");

using var listener = new VhostUserListener(socketPath);
using var backend = new DemoBackend();
var backendThread = new Thread(() =>
{
    using var dispatcher = new VhostUserBackendRequestDispatcher(listener.Accept(), backend);
    try
    {
        dispatcher.Run();
    }
    catch (VhostUserConnectionClosedException)
    {
        Console.WriteLine("  backend  | frontend disconnected");
    }
})
{ Name = "demo-backend" };
backendThread.Start();

using var frontend = VhostUserFrontend.Connect(socketPath, TimeSpan.FromSeconds(5));
ulong features = frontend.GetFeatures();
Console.WriteLine($"frontend  | GET_FEATURES 0x{features:x}");
frontend.SetFeatures(features);
VhostUserProtocolFeatures protocol = frontend.GetProtocolFeatures();
Console.WriteLine($"frontend  | GET_PROTOCOL_FEATURES {protocol}");
frontend.SetProtocolFeatures(protocol);
frontend.SetOwner();
Console.WriteLine($"frontend  | GET_QUEUE_NUM {frontend.GetQueueNum()}");

using GuestRam ram = GuestRam.Create(1 << 20);
GuestRamRegion region = ram.Regions[0];
frontend.SetMemoryTable([new VhostMemoryRegionInfo(region.GuestPhysicalAddress, region.Size, region.UserAddress, region.FileOffset, ram.FileHandle)]);
Console.WriteLine($"frontend  | SET_MEM_TABLE sent 1 MiB of memfd guest RAM");

using var kick = new EventFd();
using var call = new EventFd();
frontend.SetVringNum(0, 256);
frontend.SetVringBase(0, 0);
frontend.SetVringKick(0, kick);
frontend.SetVringCall(0, call);
frontend.SetVringEnable(0, true);

var server = new Thread(() => backend.ServeOneKick(0)) { Name = "demo-kick" };
server.Start();
kick.Signal();
Console.WriteLine("frontend  | kicked ring 0");
ulong calls = call.Read();
Console.WriteLine($"frontend  | ring 0 call eventfd fired (counter {calls})");
server.Join();

frontend.Dispose();
backendThread.Join();
Console.WriteLine("done: negotiated, passed 1 memfd and 2 eventfds, one kick answered by one call");
