using System.Runtime.CompilerServices;

// Every import is blittable: no runtime marshalling anywhere in this assembly.
[assembly: DisableRuntimeMarshalling]

// The library's own tests write malformed descriptors and read the event suppression areas
// (the internal members of the queue drivers); a device's tests use the public driver API.
[assembly: InternalsVisibleTo("VhostUserBackend.Tests")]
[assembly: InternalsVisibleTo("Vhost.HostileTests")]
