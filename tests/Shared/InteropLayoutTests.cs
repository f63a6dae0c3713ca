namespace Vhost.TestSupport;

/// <summary>
/// Every interop struct of the library under test against the x86_64 ABI (its
/// <see cref="InteropLayouts"/> table, one per test project), and no nested <c>Interop</c> struct
/// without a row. Compiled into the test project of each library that compiles interop.
/// </summary>
public sealed class InteropLayoutTests
{
    public static TheoryData<string> StructNames => new(InteropLayouts.Rows.Select(r => r.Type.Name));

    [Theory]
    [MemberData(nameof(StructNames))]
    public void Struct_size_and_field_offsets_match_the_abi(string name) => CHeaders.AssertLayout(InteropLayouts.Rows.Single(r => r.Type.Name == name));

    [Fact]
    public void Every_nested_struct_of_Interop_has_a_layout_row()
    {
        string[] missing = CHeaders.StructsWithoutRow(typeof(global::Interop), InteropLayouts.Rows, InteropLayouts.NotInteropStructs);
        Assert.True(missing.Length == 0, "interop structs without a layout row: " + string.Join(", ", missing));
    }
}
