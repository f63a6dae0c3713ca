using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using VhostUserDevice;

// The daemon runs as a hosted service: it listens on VhostUser:SocketPath (appsettings.json, or
// --VhostUser:SocketPath=/path on the command line) until Ctrl+C or SIGTERM.
// QEMU: -chardev socket,id=dev0,path=<socket> -device vhost-user-<kind>-pci,chardev=dev0
//       with memory shared: -object memory-backend-memfd,id=mem,size=1G,share=on -numa node,memdev=mem
// The content root is the app's folder, so appsettings.json is found wherever it is started from.
HostApplicationBuilder builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { Args = args, ContentRootPath = AppContext.BaseDirectory });
builder.Services.AddVhostUserBackend<Device>(builder.Configuration.GetSection("VhostUser"));
builder.Build().Run();
