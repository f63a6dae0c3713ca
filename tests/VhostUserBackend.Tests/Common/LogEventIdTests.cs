using System.Reflection;
using Microsoft.Extensions.Logging;

namespace VhostUserBackend.Tests.Common;

/// <summary>An operator filters and alerts on event ids: each must name one message of an assembly.</summary>
public sealed class LogEventIdTests
{
    [Theory]
    [InlineData(typeof(VhostUserDaemon))]
    [InlineData(typeof(Vhost.User.VhostUserFrontend))]
    public void Every_LoggerMessage_of_an_assembly_has_its_own_event_id(Type inAssembly)
    {
        var ids = inAssembly.Assembly.GetTypes()
            .SelectMany(t => t.GetMethods(BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly))
            .Select(m => (Method: m, Attribute: m.GetCustomAttribute<LoggerMessageAttribute>()))
            .Where(x => x.Attribute is not null)
            .ToList();
        Assert.NotEmpty(ids);
        var duplicates = ids.GroupBy(x => x.Attribute!.EventId).Where(g => g.Count() > 1)
            .Select(g => $"{g.Key}: {string.Join(", ", g.Select(x => x.Method.Name))}").ToList();
        Assert.True(duplicates.Count == 0, "event ids used twice: " + string.Join("; ", duplicates));
    }
}
