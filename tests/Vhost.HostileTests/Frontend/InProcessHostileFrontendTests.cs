using Vhost.HostileTests.Targets;

namespace Vhost.HostileTests.Frontend;

/// <summary>The hostile-frontend suite against the library's own daemon in this process.</summary>
[Collection("FdCount")]
public sealed class InProcessHostileFrontendTests(ITestOutputHelper output) : HostileFrontendSuite(output)
{
    /// <inheritdoc/>
    protected override IDaemonTarget CreateTarget() => new InProcessTarget();

    [Fact]
    public void Header_abuse() => RunCategories("header abuse");

    [Fact]
    public void Payload_one_byte_short_and_long_for_every_request() => RunCategories("payload size");

    [Fact]
    public void Stray_missing_and_wrong_kind_fds() => RunCategories("fds");

    [Fact]
    public void Memory_table_abuse() => RunCategories("memory tables");

    [Fact]
    public void Vring_index_size_and_address_abuse() => RunCategories("vring abuse");

    [Fact]
    public void Hostile_guest_rings() => RunCategories("hostile guest rings");

    [Fact]
    public void Resource_exhaustion() => RunCategories("resource exhaustion");

    [Fact]
    public void Migration_message_abuse() => RunCategories("migration messages");

    [Fact]
    public void Device_state_abuse() => RunCategories(DeviceStateScenarios.Category);

    [Fact]
    public void Packed_inflight_region_abuse() => RunCategories(PackedInflightScenarios.Category);

    [Fact]
    public void Truncated_unsealed_guest_memory() => RunCategories("truncate unsealed guest memory");

    [Fact]
    public void Iotlb_abuse() => RunCategories(IotlbScenarios.Category);

    [Fact]
    public void Every_scenario_has_a_unique_name_and_each_class_is_covered()
    {
        var all = AllScenarios().ToList();
        Assert.Equal(all.Count, all.Select(s => s.ToString()).Distinct().Count());
        Assert.Equal(13, all.Select(s => s.Category).Distinct().Count());
        Assert.True(all.Count >= 250, $"only {all.Count} scenarios");
    }
}
