namespace Vhost.Vmm;

/// <summary>Which address space the ring addresses given to SET_VRING_ADDR are in; it depends on the transport.</summary>
public enum VringAddressKind
{
    /// <summary>
    /// Guest physical addresses: what the in-kernel vhost frontends (<c>Vhost.Kernel</c>, which
    /// translate them through the memory table) and vDPA (where they are IOVAs, mapped by the
    /// memory table's DMA mappings) take.
    /// </summary>
    GuestPhysical,

    /// <summary>The front-end's own virtual addresses (the memory table's user addresses): what vhost-user's SET_VRING_ADDR carries.</summary>
    FrontendVirtual,
}
