namespace Vhost.Fuzz;

/// <summary>A device's config space as the `config` target drives it.</summary>
internal interface IConfigDevice
{
    void GetConfig(uint offset, Span<byte> data);

    void SetConfig(uint offset, ReadOnlySpan<byte> data);
}
