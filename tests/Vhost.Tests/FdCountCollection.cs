namespace Vhost.Tests;

/// <summary>Tests that compare the process fd count run alone: no other test may open or close fds meanwhile.</summary>
[CollectionDefinition("FdCount", DisableParallelization = true)]
public sealed class FdCountCollection
{
}
