using System.Runtime.CompilerServices;

[assembly: InternalsVisibleTo("Vhost.IntegrationTests")]
