namespace Vhost.Kernel;

/// <summary>
/// The vhost backend feature bits (<c>VHOST_BACKEND_F_*</c>, read with
/// <see cref="VhostKernelBackend.GetBackendFeatures"/> and acked with
/// <see cref="VhostKernelBackend.SetBackendFeatures"/>). The C macros are bit numbers; these are masks.
/// </summary>
[Flags]
public enum VhostBackendFeatures : ulong
{
    /// <summary>No backend feature.</summary>
    None = 0,

    /// <summary><c>VHOST_BACKEND_F_IOTLB_MSG_V2</c> (bit 1): IOTLB messages are <c>struct vhost_msg_v2</c> (with an address space id).</summary>
    IotlbMessageV2 = 1UL << 1,

    /// <summary><c>VHOST_BACKEND_F_IOTLB_BATCH</c> (bit 2): IOTLB updates may be grouped between BATCH_BEGIN and BATCH_END.</summary>
    IotlbBatch = 1UL << 2,

    /// <summary><c>VHOST_BACKEND_F_IOTLB_ASID</c> (bit 3): IOTLB messages carry an address space id (vDPA).</summary>
    IotlbAsid = 1UL << 3,

    /// <summary><c>VHOST_BACKEND_F_SUSPEND</c> (bit 4): the vDPA device can be suspended.</summary>
    Suspend = 1UL << 4,

    /// <summary><c>VHOST_BACKEND_F_RESUME</c> (bit 5): the vDPA device can be resumed after a suspend.</summary>
    Resume = 1UL << 5,

    /// <summary><c>VHOST_BACKEND_F_ENABLE_AFTER_DRIVER_OK</c> (bit 6): vrings may be enabled after DRIVER_OK.</summary>
    EnableAfterDriverOk = 1UL << 6,

    /// <summary><c>VHOST_BACKEND_F_DESC_ASID</c> (bit 7): descriptor tables may live in their own address space (vDPA).</summary>
    DescriptorAsid = 1UL << 7,
}
