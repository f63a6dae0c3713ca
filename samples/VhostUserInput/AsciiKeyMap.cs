using VhostUserBackend.Devices.Input;
using Key = VhostUserBackend.Devices.Input.VirtioInputKeyCode;

namespace VhostUserInput;

/// <summary>
/// Printable ASCII, tab and newline on a US keyboard: which key types a character and whether
/// shift is held for it, and the key events that type a text (press, SYN, release, SYN per key;
/// left shift pressed around a shifted character).
/// </summary>
internal static class AsciiKeyMap
{
    private const string Unshifted = "`1234567890-=qwertyuiop[]\\asdfghjkl;'zxcvbnm,./";
    private const string Shifted = "~!@#$%^&*()_+QWERTYUIOP{}|ASDFGHJKL:\"ZXCVBNM<>?";

    /// <summary>The keys of <see cref="Unshifted"/> and <see cref="Shifted"/>, position by position.</summary>
    private static readonly Key[] Keys =
    [
        Key.Grave, Key.D1, Key.D2, Key.D3, Key.D4, Key.D5, Key.D6, Key.D7, Key.D8, Key.D9, Key.D0, Key.Minus, Key.Equal,
        Key.Q, Key.W, Key.E, Key.R, Key.T, Key.Y, Key.U, Key.I, Key.O, Key.P, Key.LeftBrace, Key.RightBrace, Key.Backslash,
        Key.A, Key.S, Key.D, Key.F, Key.G, Key.H, Key.J, Key.K, Key.L, Key.Semicolon, Key.Apostrophe,
        Key.Z, Key.X, Key.C, Key.V, Key.B, Key.N, Key.M, Key.Comma, Key.Dot, Key.Slash,
    ];

    /// <summary>Every key code the map can produce (for the keyboard's <c>EV_KEY</c> bitmap).</summary>
    public static IEnumerable<Key> AllKeys => Keys.Concat([Key.Space, Key.Tab, Key.Enter, Key.LeftShift]);

    /// <summary>The key that types <paramref name="c"/> and whether it needs shift; false for a character a US keyboard does not type.</summary>
    public static bool TryGetKey(char c, out Key key, out bool shift)
    {
        shift = false;
        switch (c)
        {
            case ' ':
                key = Key.Space;
                return true;
            case '\t':
                key = Key.Tab;
                return true;
            case '\n':
                key = Key.Enter;
                return true;
        }

        int i = Unshifted.IndexOf(c, StringComparison.Ordinal);
        if (i < 0)
        {
            i = Shifted.IndexOf(c, StringComparison.Ordinal);
            shift = i >= 0;
        }

        key = i >= 0 ? Keys[i] : Key.Reserved;
        return i >= 0;
    }

    /// <summary>The events that type <paramref name="text"/>.</summary>
    /// <exception cref="ArgumentException">A character of the text has no key (the message names it and its position).</exception>
    public static List<VirtioInputEvent> Type(string text)
    {
        var events = new List<VirtioInputEvent>(text.Length * 8);
        for (int i = 0; i < text.Length; i++)
        {
            if (!TryGetKey(text[i], out Key key, out bool shift))
            {
                throw new ArgumentException($"character U+{(int)text[i]:X4} at {i} has no key on a US keyboard (printable ASCII, tab and newline only)", nameof(text));
            }

            if (shift)
            {
                AddKey(events, Key.LeftShift, 1);
            }

            AddKey(events, key, 1);
            AddKey(events, key, 0);
            if (shift)
            {
                AddKey(events, Key.LeftShift, 0);
            }
        }

        return events;
    }

    private static void AddKey(List<VirtioInputEvent> events, Key key, uint value)
    {
        events.Add(new VirtioInputEvent(VirtioInputEventType.Key, (ushort)key, value));
        events.Add(new VirtioInputEvent(VirtioInputEventType.Synchronization, 0, 0));
    }
}
