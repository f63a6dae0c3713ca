using System.Runtime.CompilerServices;

[assembly: InternalsVisibleTo("VhostUserBackend.Hosting.Tests")]
