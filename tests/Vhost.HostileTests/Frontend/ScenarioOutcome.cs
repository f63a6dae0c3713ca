namespace Vhost.HostileTests.Frontend;

/// <summary>How the daemon came out of a scenario.</summary>
public enum ScenarioOutcome
{
    /// <summary>Alive, answering a fresh connection, completing a well-formed request, fd count unchanged.</summary>
    Survived,

    /// <summary>The daemon (process or control thread) is gone.</summary>
    Crashed,

    /// <summary>The attack or the health check did not finish in time.</summary>
    Hung,

    /// <summary>The daemon holds more fds than before the scenario.</summary>
    FdLeak,

    /// <summary>The fresh connection failed or the well-formed request was answered wrongly.</summary>
    Broken,
}
