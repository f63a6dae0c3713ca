namespace VhostUserBackend.Devices.Input;

/// <summary>The common event types of a <see cref="VirtioInputEvent"/> (Linux <c>EV_*</c>, which virtio-input uses as they are).</summary>
public enum VirtioInputEventType : ushort
{
    /// <summary><c>EV_SYN</c>: separates groups of events (code <c>SYN_REPORT</c> 0 ends one).</summary>
    Synchronization = 0x00,

    /// <summary><c>EV_KEY</c>: keys and buttons (value 1 pressed, 0 released, 2 repeated).</summary>
    Key = 0x01,

    /// <summary><c>EV_REL</c>: relative axes (mouse movement, wheels).</summary>
    Relative = 0x02,

    /// <summary><c>EV_ABS</c>: absolute axes (tablets, touch screens).</summary>
    Absolute = 0x03,

    /// <summary><c>EV_MSC</c>: miscellaneous (<c>MSC_SCAN</c> scan codes).</summary>
    Miscellaneous = 0x04,

    /// <summary><c>EV_SW</c>: switches (lid, headphone jack).</summary>
    Switch = 0x05,

    /// <summary><c>EV_LED</c>: LEDs (caps lock); the driver sends these on the status queue.</summary>
    Led = 0x11,

    /// <summary><c>EV_SND</c>: sounds (bell, click); the driver sends these on the status queue.</summary>
    Sound = 0x12,

    /// <summary><c>EV_REP</c>: autorepeat delay and period.</summary>
    Repeat = 0x14,

    /// <summary><c>EV_FF</c>: force feedback.</summary>
    ForceFeedback = 0x15,

    /// <summary><c>EV_PWR</c>: power buttons and events.</summary>
    Power = 0x16,

    /// <summary><c>EV_FF_STATUS</c>: force feedback status.</summary>
    ForceFeedbackStatus = 0x17,
}
