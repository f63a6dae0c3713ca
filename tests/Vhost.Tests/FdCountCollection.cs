namespace Vhost.Tests;

/// <summary>
/// Tests that compare the process's open fd count (<c>/proc/self/fd</c>) before and after run in
/// this collection, which xunit runs alone, so no other test opens or closes fds meanwhile.
/// </summary>
[CollectionDefinition("FdCount", DisableParallelization = true)]
public sealed class FdCountCollection
{
}
