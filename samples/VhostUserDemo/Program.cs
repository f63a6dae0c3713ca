using System.Text;
using Vhost;
using Vhost.User;
using Vhost.User.Messages;
using Vhost.Vmm;
using VhostUserBackend;
using VhostUserBackend.Testing;
using VhostUserBackend.Virtio;
using VhostUserDemo;

// A vhost-user front-end and a back-end device in one process, talking over a real Unix socket:
// negotiation, a memory table whose memfd crosses the socket with SCM_RIGHTS, a split ring laid
// out in that memory, kick and call eventfds handed over, and one request answered by the device.
string socketPath = args.Length > 0 ? args[0] : Path.Combine(Path.GetTempPath(), $"vhost-user-demo-{Environment.ProcessId}.sock");
Console.WriteLine($"vhost-user demo on {socketPath}");

// The back-end: the daemon serves the socket and runs the device's queue on a worker thread.
using var daemon = new VhostUserDaemon(new DemoDevice());
daemon.Start(socketPath);

using var frontend = VhostUserFrontend.Connect(socketPath, TimeSpan.FromSeconds(5));
ulong features = frontend.GetFeatures();
Console.WriteLine($"frontend  | GET_FEATURES 0x{features:x}");
VhostUserProtocolFeatures protocol = frontend.GetProtocolFeatures() & (VhostUserProtocolFeatures.MQ | VhostUserProtocolFeatures.ReplyAck);
frontend.SetProtocolFeatures(protocol);
Console.WriteLine($"frontend  | SET_PROTOCOL_FEATURES {protocol}");
Console.WriteLine($"frontend  | GET_QUEUE_NUM {frontend.GetQueueNum()}");
frontend.SetOwner();
frontend.SetFeatures(features);
Console.WriteLine($"frontend  | SET_FEATURES 0x{features:x}");

// Guest RAM: a memfd this process maps; the back-end maps the same fd.
using GuestRam ram = GuestRam.Create(1 << 20);
GuestRamRegion region = ram.Regions[0];
frontend.SetMemoryTable([new VhostMemoryRegionInfo(region.GuestPhysicalAddress, region.Size, region.UserAddress, region.FileOffset, ram.FileHandle)]);
Console.WriteLine("frontend  | SET_MEM_TABLE sent 1 MiB of memfd guest RAM");

// Ring 0: the driver side of a split ring in guest RAM; vhost-user takes ring addresses in the
// front-end's address space.
const ushort QueueSize = 256;
var driver = new SplitQueueDriver(ram, QueueSize);
using var kick = new EventFd();
using var call = new EventFd();
frontend.SetVringNum(0, QueueSize);
frontend.SetVringAddress(0, new VringConfigData(
    QueueSize,
    QueueSize,
    VringFlags.None,
    VmmDevice.UserAddressOf(ram, driver.DescriptorTableAddress),
    VmmDevice.UserAddressOf(ram, driver.UsedRingAddress),
    VmmDevice.UserAddressOf(ram, driver.AvailRingAddress)));
frontend.SetVringBase(0, 0);
frontend.SetVringKick(0, kick);
frontend.SetVringCall(0, call);
frontend.SetVringEnable(0, true);
Console.WriteLine("frontend  | ring 0 set up (num, addresses, base, kick and call eventfds, enabled)");

// One request: a 64-byte device-writable buffer, made available and kicked.
ulong buffer = ram.Allocate(64);
ushort head = driver.AddBuffers([new VirtqBuffer(buffer, 64, true)]);
driver.Publish();
kick.Signal();
Console.WriteLine($"frontend  | chain {head} made available on ring 0, kicked");
ulong calls = call.Read();
Console.WriteLine($"frontend  | ring 0 call eventfd fired (counter {calls})");
if (!driver.TryGetUsed(out ushort usedHead, out uint length))
{
    throw new InvalidOperationException("the call fired but the used ring is empty");
}

byte[] reply = new byte[length];
ram.Read(buffer, reply);
Console.WriteLine($"frontend  | used ring: chain {usedHead}, {length} bytes: \"{Encoding.ASCII.GetString(reply)}\"");

frontend.Dispose();
daemon.Stop();
Console.WriteLine("done: negotiated, passed 1 memfd and 2 eventfds, one request answered by the device");
