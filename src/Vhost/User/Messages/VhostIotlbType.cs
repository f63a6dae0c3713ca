namespace Vhost.User.Messages;

/// <summary>The <c>type</c> of an IOTLB message (<c>VHOST_IOTLB_*</c>).</summary>
public enum VhostIotlbType : byte
{
    /// <summary><c>VHOST_IOTLB_MISS</c>: the device needs a translation (back-end to front-end).</summary>
    Miss = 1,
    /// <summary><c>VHOST_IOTLB_UPDATE</c>: a new translation.</summary>
    Update = 2,
    /// <summary><c>VHOST_IOTLB_INVALIDATE</c>: drop translations.</summary>
    Invalidate = 3,
    /// <summary><c>VHOST_IOTLB_ACCESS_FAIL</c>: an access violated the permission (back-end to front-end).</summary>
    AccessFail = 4,
    /// <summary><c>VHOST_IOTLB_BATCH_BEGIN</c>.</summary>
    BatchBegin = 5,
    /// <summary><c>VHOST_IOTLB_BATCH_END</c>.</summary>
    BatchEnd = 6,
}
