namespace Vhost.Fuzz;

/// <summary>
/// A target broke its contract in a way that is not an exception of the code under test: a
/// request that hung, or fds left open. Never allowed: the harness reports it as a crash.
/// </summary>
public sealed class FuzzContractException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="message">What went wrong.</param>
    public FuzzContractException(string message)
        : base(message)
    {
    }
}
