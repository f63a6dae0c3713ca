namespace Vhost.GuestHarness;

/// <summary>The outcome word of a guest result line (<c>VHOSTTEST &lt;name&gt; PASS|FAIL|SKIP &lt;detail&gt;</c>).</summary>
public enum GuestTestStatus
{
    /// <summary><c>PASS</c>: the check succeeded in the guest.</summary>
    Pass,

    /// <summary><c>FAIL</c>: the check failed in the guest (or the line was malformed).</summary>
    Fail,

    /// <summary><c>SKIP</c>: the guest could not run the check; the detail says why.</summary>
    Skip,
}
