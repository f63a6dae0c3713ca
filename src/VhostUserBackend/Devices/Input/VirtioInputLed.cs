namespace VhostUserBackend.Devices.Input;

/// <summary>
/// The LED codes (Linux <c>LED_*</c> of input-event-codes.h): the <see cref="VirtioInputEvent.Code"/>
/// of a <see cref="VirtioInputEventType.Led"/> event, which the driver sends on the status queue
/// (value 1 on, 0 off), and the bits a device lists for <see cref="VirtioInputEventType.Led"/> in
/// <see cref="VirtioInputConfigSelect.EventBits"/>.
/// </summary>
public enum VirtioInputLed : ushort
{
    /// <summary><c>LED_NUML</c>: num lock.</summary>
    NumLock = 0x00,

    /// <summary><c>LED_CAPSL</c>: caps lock.</summary>
    CapsLock = 0x01,

    /// <summary><c>LED_SCROLLL</c>: scroll lock.</summary>
    ScrollLock = 0x02,

    /// <summary><c>LED_COMPOSE</c>: compose.</summary>
    Compose = 0x03,

    /// <summary><c>LED_KANA</c>: kana.</summary>
    Kana = 0x04,

    /// <summary><c>LED_SLEEP</c>: sleep.</summary>
    Sleep = 0x05,

    /// <summary><c>LED_SUSPEND</c>: suspend.</summary>
    Suspend = 0x06,

    /// <summary><c>LED_MUTE</c>: mute.</summary>
    Mute = 0x07,

    /// <summary><c>LED_MISC</c>: miscellaneous.</summary>
    Misc = 0x08,

    /// <summary><c>LED_MAIL</c>: mail.</summary>
    Mail = 0x09,

    /// <summary><c>LED_CHARGING</c>: charging.</summary>
    Charging = 0x0a,
}
