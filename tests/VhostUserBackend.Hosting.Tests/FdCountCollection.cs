namespace VhostUserBackend.Hosting.Tests;

/// <summary>Tests that count open fds of the whole process run alone.</summary>
[CollectionDefinition("FdCount", DisableParallelization = true)]
public sealed class FdCountCollection
{
}
