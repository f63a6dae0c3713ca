namespace VhostUserBackend.Devices.Input;

/// <summary>What the driver asks for in <see cref="VirtioInputConfig.Select"/> (<c>enum virtio_input_config_select</c>, VIRTIO 1.3 §5.8.5).</summary>
public enum VirtioInputConfigSelect : byte
{
    /// <summary><c>VIRTIO_INPUT_CFG_UNSET</c>: nothing selected (<see cref="VirtioInputConfig.Size"/> 0).</summary>
    Unset = 0x00,

    /// <summary><c>VIRTIO_INPUT_CFG_ID_NAME</c>: the device name, a string (<c>subsel</c> 0).</summary>
    IdName = 0x01,

    /// <summary><c>VIRTIO_INPUT_CFG_ID_SERIAL</c>: the serial number, a string (<c>subsel</c> 0).</summary>
    IdSerial = 0x02,

    /// <summary><c>VIRTIO_INPUT_CFG_ID_DEVIDS</c>: bus type, vendor, product and version (<see cref="VirtioInputDevIds"/>).</summary>
    IdDevIds = 0x03,

    /// <summary><c>VIRTIO_INPUT_CFG_PROP_BITS</c>: the input properties (<c>INPUT_PROP_*</c>), a bitmap.</summary>
    PropertyBits = 0x10,

    /// <summary><c>VIRTIO_INPUT_CFG_EV_BITS</c>: the codes the device sends for the event type in <c>subsel</c>, a bitmap (<c>subsel</c> 0: the supported types).</summary>
    EventBits = 0x11,

    /// <summary><c>VIRTIO_INPUT_CFG_ABS_INFO</c>: the range of the absolute axis in <c>subsel</c> (<see cref="VirtioInputAbsInfo"/>).</summary>
    AbsInfo = 0x12,
}
