using System.Reflection;

namespace VhostUserBackend.Tests.Daemon;

/// <summary>The daemon works on a copy of its options taken at construction: every setting must be in the copy.</summary>
public sealed class DaemonOptionsSnapshotTests
{
    [Fact]
    public void Snapshot_copies_every_setting()
    {
        using var group = new VhostUserWorkerGroup(1);
        foreach (PropertyInfo p in typeof(VhostUserDaemonOptions).GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.CanWrite))
        {
            var options = new VhostUserDaemonOptions();
            object changed = NonDefault(p, p.GetValue(options), group);
            p.SetValue(options, changed);
            object? copied = p.GetValue(options.Snapshot());
            if (changed is IEnumerable<uint> ids)
            {
                Assert.Equal(ids, Assert.IsAssignableFrom<IEnumerable<uint>>(copied));
            }
            else
            {
                Assert.True(Equals(changed, copied), $"{p.Name}: set {changed}, the snapshot has {copied}");
            }
        }
    }

    private static object NonDefault(PropertyInfo p, object? current, VhostUserWorkerGroup group) => current switch
    {
        bool b => !b,
        TimeSpan t => p.Name == nameof(VhostUserDaemonOptions.ReconnectDelay) ? t + TimeSpan.FromMilliseconds(1) : t - TimeSpan.FromMilliseconds(1),
        GuestMemoryFilePolicy f => Enum.GetValues<GuestMemoryFilePolicy>().First(v => v != f),
        null when p.PropertyType == typeof(IReadOnlyCollection<uint>) => new uint[] { 7, 9 },
        null when p.PropertyType == typeof(VhostUserWorkerGroup) => group,
        _ => throw new InvalidOperationException($"{p.Name} ({p.PropertyType}): teach this test a value other than the default"),
    };
}
