namespace Vhost.HostileTests;

/// <summary>Every hostile test counts the fds of a whole process (this one, or the daemon's), so they run alone.</summary>
[CollectionDefinition("FdCount", DisableParallelization = true)]
public sealed class FdCountCollection
{
}
