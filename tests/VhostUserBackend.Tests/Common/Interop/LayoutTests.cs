using System.Runtime.InteropServices;

namespace VhostUserBackend.Tests.Common.Interop;

/// <summary>Every interop struct of VhostUserBackend against the x86_64 ABI, and no struct without a row.</summary>
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
    public void Epoll_wait_uses_this_architectures_epoll_event()
    {
        // Packed to 12 bytes on x86_64 only; 16 elsewhere.
        int expected = RuntimeInformation.ProcessArchitecture == Architecture.X64 ? 12 : 16;
        Assert.Equal(expected, global::Interop.EpollEventSize);
    }
}
