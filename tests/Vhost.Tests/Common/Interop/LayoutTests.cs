using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Vhost.Tests.Common.Interop;

/// <summary>Every interop struct's size and field offsets against the x86_64 ABI.</summary>
public sealed class LayoutTests
{
    public static TheoryData<string> StructNames => new(InteropLayouts.Rows.Select(r => r.Type.Name));

    [Theory]
    [MemberData(nameof(StructNames))]
    public void Struct_size_and_field_offsets_match_the_abi(string name)
    {
        LayoutRow row = InteropLayouts.Find(name);
        Assert.Equal(row.Size, InteropLayouts.SizeOf(row.Type));

        // The row names every field: a field added to the struct without a row fails here.
        string[] actualFields = InteropLayouts.FieldsOf(row.Type).Select(f => f.Name).Order(StringComparer.Ordinal).ToArray();
        string[] expectedFields = row.Fields.Select(f => f.Name).Order(StringComparer.Ordinal).ToArray();
        Assert.Equal(expectedFields, actualFields);

        foreach (FieldRow field in row.Fields)
        {
            Assert.True(field.Offset == (int)Marshal.OffsetOf(row.Type, field.Name), $"{name}.{field.Name}: offset {Marshal.OffsetOf(row.Type, field.Name)}, expected {field.Offset}");
            int size = InteropLayouts.SizeOf(row.Type.GetField(field.Name)!.FieldType);
            Assert.True(field.Size == size, $"{name}.{field.Name}: size {size}, expected {field.Size}");
        }

        // Only alignment padding may follow the last field (msghdr has 4 bytes of it).
        FieldRow last = row.Fields.MaxBy(f => f.Offset)!;
        Assert.InRange(row.Size - (last.Offset + last.Size), 0, 7);
    }

    [Fact]
    public void Every_nested_struct_of_Interop_has_a_layout_row()
    {
        Type[] structs = typeof(global::Interop)
            .GetNestedTypes(System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.NonPublic)
            .Where(t => t.IsValueType && !t.IsEnum && !t.IsDefined(typeof(CompilerGeneratedAttribute), false))
            .ToArray();
        Assert.NotEmpty(structs);

        var covered = InteropLayouts.Rows.Select(r => r.Type).ToHashSet();
        string[] missing = structs
            .Where(t => !covered.Contains(t) && !InteropLayouts.NotInteropStructs.ContainsKey(t))
            .Select(t => t.Name)
            .ToArray();
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
