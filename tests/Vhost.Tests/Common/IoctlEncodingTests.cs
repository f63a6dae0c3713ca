namespace Vhost.Tests.Common;

public sealed class IoctlEncodingTests
{
    [Fact]
    public void Field_layout_is_the_asm_generic_one()
    {
        Assert.Equal(0, IoctlEncoding.NumberShift);
        Assert.Equal(8, IoctlEncoding.TypeShift);
        Assert.Equal(16, IoctlEncoding.SizeShift);
        Assert.Equal(30, IoctlEncoding.DirectionShift);
        Assert.Equal(0x3FFF, IoctlEncoding.MaxSize);
        Assert.Equal(0u, IoctlEncoding.None);
        Assert.Equal(0x40000000u, IoctlEncoding.Write);
        Assert.Equal(0x80000000u, IoctlEncoding.Read);
        Assert.Equal(0xC0000000u, IoctlEncoding.ReadWrite);
    }

    [Theory]
    [InlineData(0x00u, 0x00u, 0x0u)]
    [InlineData(0xAFu, 0x01u, 0xAF01u)]
    [InlineData(0x54u, 0x1Bu, 0x541Bu)] // FIONREAD is a legacy _IO-style number (0x541B)
    public void IO_encodes_type_and_number(uint type, uint number, uint expected)
    {
        Assert.Equal(expected, IoctlEncoding.IO(type, number));
    }

    [Fact]
    public void Directions_land_in_the_top_two_bits()
    {
        Assert.Equal(0x8008AF00u, IoctlEncoding.IOR(0xAF, 0x00, 8));
        Assert.Equal(0x4008AF00u, IoctlEncoding.IOW(0xAF, 0x00, 8));
        Assert.Equal(0xC008AF12u, IoctlEncoding.IOWR(0xAF, 0x12, 8));
        Assert.Equal(0xFFFFFFFFu, IoctlEncoding.Ioc(3, 0xFF, 0xFF, 0x3FFF));
        Assert.Equal(0x3FFF0000u, IoctlEncoding.Ioc(0, 0, 0, 0x3FFF));
    }

    [Theory]
    [InlineData(4u, 0xAFu, 0u, 0u, "direction")]
    [InlineData(0u, 0x100u, 0u, 0u, "type")]
    [InlineData(0u, 0xAFu, 0x100u, 0u, "number")]
    [InlineData(0u, 0xAFu, 0u, 0x4000u, "size")]
    [InlineData(uint.MaxValue, 0xAFu, 0u, 0u, "direction")]
    public void Out_of_range_fields_throw_naming_the_field(uint direction, uint type, uint number, uint size, string parameter)
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => IoctlEncoding.Ioc(direction, type, number, size));
        Assert.Equal(parameter, e.ParamName);
    }

    [Fact]
    public void Helpers_reject_out_of_range_fields_too()
    {
        Assert.Equal("size", Assert.Throws<ArgumentOutOfRangeException>(() => IoctlEncoding.IOR(0xAF, 0, 0x4000)).ParamName);
        Assert.Equal("size", Assert.Throws<ArgumentOutOfRangeException>(() => IoctlEncoding.IOW(0xAF, 0, 0x10000)).ParamName);
        Assert.Equal("type", Assert.Throws<ArgumentOutOfRangeException>(() => IoctlEncoding.IOWR(0x1AF, 0, 8)).ParamName);
        Assert.Equal("number", Assert.Throws<ArgumentOutOfRangeException>(() => IoctlEncoding.IO(0xAF, 0x1FF)).ParamName);
    }
}
