using System.Runtime.CompilerServices;

// Every import is blittable: no runtime marshalling anywhere in this assembly.
[assembly: DisableRuntimeMarshalling]
[assembly: InternalsVisibleTo("Vhost.Tests")]
[assembly: InternalsVisibleTo("Vhost.KernelTests")]

// The device framework, the guest-driver model (VhostUserBackend.Testing, shipped with it at the
// same version), their tests, the hostile-peer tests, the fuzz targets and the benchmarks
// reach the transport, the wire structs and the interop layer (src/Common is compiled here only,
// so no second copy of those internal types exists to clash with these).
[assembly: InternalsVisibleTo("VhostUserBackend")]
[assembly: InternalsVisibleTo("VhostUserBackend.Testing")]
[assembly: InternalsVisibleTo("VhostUserBackend.Tests")]
[assembly: InternalsVisibleTo("Vhost.HostileTests")]
[assembly: InternalsVisibleTo("Vhost.Fuzz.Targets")]
[assembly: InternalsVisibleTo("Vhost.Benchmarks")]
