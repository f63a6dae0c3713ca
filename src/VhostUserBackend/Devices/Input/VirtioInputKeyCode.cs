namespace VhostUserBackend.Devices.Input;

/// <summary>
/// The key codes of a PC keyboard's main block (Linux <c>KEY_*</c> of input-event-codes.h, which
/// virtio-input uses as they are): the <see cref="VirtioInputEvent.Code"/> of a
/// <see cref="VirtioInputEventType.Key"/> event. Codes are positions on a US keyboard, not
/// characters (<see cref="A"/> is the key of the A on a US layout; shifted characters are
/// <see cref="LeftShift"/> plus a key).
/// </summary>
public enum VirtioInputKeyCode : ushort
{
    /// <summary><c>KEY_RESERVED</c>: not a key.</summary>
    Reserved = 0,

    /// <summary><c>KEY_ESC</c>.</summary>
    Escape = 1,

    /// <summary><c>KEY_1</c>.</summary>
    D1 = 2,

    /// <summary><c>KEY_2</c>.</summary>
    D2 = 3,

    /// <summary><c>KEY_3</c>.</summary>
    D3 = 4,

    /// <summary><c>KEY_4</c>.</summary>
    D4 = 5,

    /// <summary><c>KEY_5</c>.</summary>
    D5 = 6,

    /// <summary><c>KEY_6</c>.</summary>
    D6 = 7,

    /// <summary><c>KEY_7</c>.</summary>
    D7 = 8,

    /// <summary><c>KEY_8</c>.</summary>
    D8 = 9,

    /// <summary><c>KEY_9</c>.</summary>
    D9 = 10,

    /// <summary><c>KEY_0</c>.</summary>
    D0 = 11,

    /// <summary><c>KEY_MINUS</c>.</summary>
    Minus = 12,

    /// <summary><c>KEY_EQUAL</c>.</summary>
    Equal = 13,

    /// <summary><c>KEY_BACKSPACE</c>.</summary>
    Backspace = 14,

    /// <summary><c>KEY_TAB</c>.</summary>
    Tab = 15,

    /// <summary><c>KEY_Q</c>.</summary>
    Q = 16,

    /// <summary><c>KEY_W</c>.</summary>
    W = 17,

    /// <summary><c>KEY_E</c>.</summary>
    E = 18,

    /// <summary><c>KEY_R</c>.</summary>
    R = 19,

    /// <summary><c>KEY_T</c>.</summary>
    T = 20,

    /// <summary><c>KEY_Y</c>.</summary>
    Y = 21,

    /// <summary><c>KEY_U</c>.</summary>
    U = 22,

    /// <summary><c>KEY_I</c>.</summary>
    I = 23,

    /// <summary><c>KEY_O</c>.</summary>
    O = 24,

    /// <summary><c>KEY_P</c>.</summary>
    P = 25,

    /// <summary><c>KEY_LEFTBRACE</c>.</summary>
    LeftBrace = 26,

    /// <summary><c>KEY_RIGHTBRACE</c>.</summary>
    RightBrace = 27,

    /// <summary><c>KEY_ENTER</c>.</summary>
    Enter = 28,

    /// <summary><c>KEY_LEFTCTRL</c>.</summary>
    LeftCtrl = 29,

    /// <summary><c>KEY_A</c>.</summary>
    A = 30,

    /// <summary><c>KEY_S</c>.</summary>
    S = 31,

    /// <summary><c>KEY_D</c>.</summary>
    D = 32,

    /// <summary><c>KEY_F</c>.</summary>
    F = 33,

    /// <summary><c>KEY_G</c>.</summary>
    G = 34,

    /// <summary><c>KEY_H</c>.</summary>
    H = 35,

    /// <summary><c>KEY_J</c>.</summary>
    J = 36,

    /// <summary><c>KEY_K</c>.</summary>
    K = 37,

    /// <summary><c>KEY_L</c>.</summary>
    L = 38,

    /// <summary><c>KEY_SEMICOLON</c>.</summary>
    Semicolon = 39,

    /// <summary><c>KEY_APOSTROPHE</c>.</summary>
    Apostrophe = 40,

    /// <summary><c>KEY_GRAVE</c>.</summary>
    Grave = 41,

    /// <summary><c>KEY_LEFTSHIFT</c>.</summary>
    LeftShift = 42,

    /// <summary><c>KEY_BACKSLASH</c>.</summary>
    Backslash = 43,

    /// <summary><c>KEY_Z</c>.</summary>
    Z = 44,

    /// <summary><c>KEY_X</c>.</summary>
    X = 45,

    /// <summary><c>KEY_C</c>.</summary>
    C = 46,

    /// <summary><c>KEY_V</c>.</summary>
    V = 47,

    /// <summary><c>KEY_B</c>.</summary>
    B = 48,

    /// <summary><c>KEY_N</c>.</summary>
    N = 49,

    /// <summary><c>KEY_M</c>.</summary>
    M = 50,

    /// <summary><c>KEY_COMMA</c>.</summary>
    Comma = 51,

    /// <summary><c>KEY_DOT</c>.</summary>
    Dot = 52,

    /// <summary><c>KEY_SLASH</c>.</summary>
    Slash = 53,

    /// <summary><c>KEY_RIGHTSHIFT</c>.</summary>
    RightShift = 54,

    /// <summary><c>KEY_KPASTERISK</c>.</summary>
    KeypadAsterisk = 55,

    /// <summary><c>KEY_LEFTALT</c>.</summary>
    LeftAlt = 56,

    /// <summary><c>KEY_SPACE</c>.</summary>
    Space = 57,

    /// <summary><c>KEY_CAPSLOCK</c>.</summary>
    CapsLock = 58,

    /// <summary><c>KEY_F1</c>.</summary>
    F1 = 59,

    /// <summary><c>KEY_F2</c>.</summary>
    F2 = 60,

    /// <summary><c>KEY_F3</c>.</summary>
    F3 = 61,

    /// <summary><c>KEY_F4</c>.</summary>
    F4 = 62,

    /// <summary><c>KEY_F5</c>.</summary>
    F5 = 63,

    /// <summary><c>KEY_F6</c>.</summary>
    F6 = 64,

    /// <summary><c>KEY_F7</c>.</summary>
    F7 = 65,

    /// <summary><c>KEY_F8</c>.</summary>
    F8 = 66,

    /// <summary><c>KEY_F9</c>.</summary>
    F9 = 67,

    /// <summary><c>KEY_F10</c>.</summary>
    F10 = 68,

    /// <summary><c>KEY_NUMLOCK</c>.</summary>
    NumLock = 69,

    /// <summary><c>KEY_SCROLLLOCK</c>.</summary>
    ScrollLock = 70,
}
