namespace Vhost.Tests.Common.Interop;

/// <summary>Every interop struct's size and field offsets against the x86_64 ABI.</summary>
public sealed class LayoutTests
{
    public static TheoryData<string> StructNames => new(InteropLayouts.Rows.Select(r => r.Type.Name));

    [Theory]
    [MemberData(nameof(StructNames))]
    public void Struct_size_and_field_offsets_match_the_abi(string name) => CHeaders.AssertLayout(InteropLayouts.Find(name));

    [Fact]
    public void Every_nested_struct_of_Interop_has_a_layout_row()
    {
        string[] missing = CHeaders.StructsWithoutRow(typeof(global::Interop), InteropLayouts.Rows, InteropLayouts.NotInteropStructs);
        Assert.True(missing.Length == 0, "interop structs without a layout row: " + string.Join(", ", missing));
    }

    [Fact]
    public void Cmsg_macros_follow_glibc()
    {
        // CMSG_LEN does not align the payload; CMSG_SPACE does.
        Assert.Equal(16, global::Interop.CmsgLen(0));
        Assert.Equal(20, global::Interop.CmsgLen(4));
        Assert.Equal(24, global::Interop.CmsgLen(8));
        Assert.Equal(28, global::Interop.CmsgLen(12));
        Assert.Equal(144, global::Interop.CmsgLen(128));
        Assert.Equal(16, global::Interop.CmsgSpace(0));
        Assert.Equal(24, global::Interop.CmsgSpace(4));
        Assert.Equal(24, global::Interop.CmsgSpace(8));
        Assert.Equal(32, global::Interop.CmsgSpace(12));
        Assert.Equal(144, global::Interop.CmsgSpace(128));
    }
}
