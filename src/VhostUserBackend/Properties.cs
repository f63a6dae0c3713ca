using System.Runtime.CompilerServices;

// Every import is blittable: no runtime marshalling anywhere in this assembly.
[assembly: DisableRuntimeMarshalling]
// The guest-driver model ships with this package at the same version and writes the virtio ring
// layouts (VirtqDescriptor, PackedDescriptor, ...), which are internal here.
[assembly: InternalsVisibleTo("VhostUserBackend.Testing")]
[assembly: InternalsVisibleTo("VhostUserBackend.Tests")]
[assembly: InternalsVisibleTo("Vhost.HostileTests")]
[assembly: InternalsVisibleTo("Vhost.IntegrationTests")]
[assembly: InternalsVisibleTo("Vhost.Fuzz.Targets")]
[assembly: InternalsVisibleTo("Vhost.Benchmarks")]
