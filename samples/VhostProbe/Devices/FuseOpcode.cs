namespace VhostProbe.Devices;

/// <summary>The FUSE opcodes the probe sends (linux/fuse.h).</summary>
public enum FuseOpcode : uint
{
    /// <summary>FUSE_LOOKUP.</summary>
    Lookup = 1,

    /// <summary>FUSE_GETATTR.</summary>
    GetAttr = 3,

    /// <summary>FUSE_INIT.</summary>
    Init = 26,
}
