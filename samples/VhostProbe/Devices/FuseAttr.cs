namespace VhostProbe.Devices;

/// <summary>The fields of a <c>fuse_attr</c> the probe reports.</summary>
/// <param name="Ino">Inode number.</param>
/// <param name="Size">Size in bytes.</param>
/// <param name="Mode">File mode (type and permissions).</param>
/// <param name="NLink">Link count.</param>
/// <param name="Uid">Owner.</param>
/// <param name="Gid">Group.</param>
public readonly record struct FuseAttr(ulong Ino, ulong Size, uint Mode, uint NLink, uint Uid, uint Gid);
