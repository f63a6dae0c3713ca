using System.Text;
using Vhost.User.Messages;
using Vhost.Virtio;

namespace Vhost.User;

/// <summary>
/// Feature bits as names, for logs and error messages: the transport bits of the virtio spec and
/// the vhost-user bits by their enum names (<c>Version1</c>, <c>RingEventIndex</c>, <c>LogAll</c>),
/// the device-specific bits (0-23 and 50-63: their meaning depends on the device type) as
/// <c>device bit N</c>, and protocol features by their <see cref="VhostUserProtocolFeatures"/> names.
/// </summary>
internal static class VhostUserFeatureNames
{
    /// <summary>Names the set bits of virtio <paramref name="features"/>, then the hexadecimal value.</summary>
    public static string Virtio(ulong features)
    {
        var text = new StringBuilder();
        var device = new List<int>();
        for (int bit = 0; bit < 64; bit++)
        {
            ulong mask = 1UL << bit;
            if ((features & mask) == 0)
            {
                continue;
            }

            string? name = Enum.IsDefined((VirtioFeatures)mask) ? ((VirtioFeatures)mask).ToString()
                : Enum.IsDefined((VhostUserVirtioFeatures)mask) ? ((VhostUserVirtioFeatures)mask).ToString()
                : null;
            if (name is null && (bit < 24 || bit >= 50))
            {
                device.Add(bit);
                continue;
            }

            Append(text, name ?? $"bit {bit}");
        }

        if (device.Count > 0)
        {
            Append(text, (device.Count == 1 ? "device bit " : "device bits ") + string.Join(' ', device));
        }

        return Finish(text, features);
    }

    /// <summary>Names the set bits of <paramref name="features"/>, then the hexadecimal value.</summary>
    public static string Protocol(VhostUserProtocolFeatures features)
    {
        var text = new StringBuilder();
        for (int bit = 0; bit < 64; bit++)
        {
            var mask = (VhostUserProtocolFeatures)(1UL << bit);
            if ((features & mask) != 0)
            {
                Append(text, Enum.IsDefined(mask) ? mask.ToString() : $"bit {bit}");
            }
        }

        return Finish(text, (ulong)features);
    }

    private static void Append(StringBuilder text, string name)
    {
        if (text.Length > 0)
        {
            text.Append(", ");
        }

        text.Append(name);
    }

    private static string Finish(StringBuilder text, ulong value)
        => $"{(text.Length == 0 ? "none" : text.ToString())} (0x{value:x})";
}
