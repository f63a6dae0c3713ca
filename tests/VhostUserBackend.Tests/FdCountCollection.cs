namespace VhostUserBackend.Tests;

/// <summary>Tests that count open fds or mappings of the whole process run alone.</summary>
[CollectionDefinition("FdCount", DisableParallelization = true)]
public sealed class FdCountCollection
{
}
