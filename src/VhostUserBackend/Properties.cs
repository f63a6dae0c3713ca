using System.Runtime.CompilerServices;

// Every import is blittable: no runtime marshalling anywhere in this assembly.
[assembly: DisableRuntimeMarshalling]
[assembly: InternalsVisibleTo("VhostUserBackend.Tests")]
[assembly: InternalsVisibleTo("Vhost.HostileTests")]
[assembly: InternalsVisibleTo("Vhost.Fuzz.Targets")]
