using System.Diagnostics;
using Microsoft.Win32.SafeHandles;
using VhostUserBackend.Memory;

namespace VhostUserBackend.Tests.Memory;

/// <summary>
/// The SIGBUS guard of guest-memory mappings (native/faultguard): a registered mapping whose file
/// shrinks reads zeros and is marked lost; every other fault reaches the runtime as before.
/// </summary>
[Collection("FdCount")]
public sealed class GuestMemoryFaultGuardTests
{
    private const ulong Page = 4096;
    private const string ChildVariable = "VHOST_FAULT_GUARD_CHILD";

    [Fact]
    public void The_guard_is_installed_on_linux_x64()
    {
        Assert.SkipUnless(System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture == System.Runtime.InteropServices.Architecture.X64, "the guard ships for linux-x64 only");
        Assert.Null(GuestMemoryFaultGuard.UnavailableReason);
    }

    [Fact]
    public void A_region_whose_file_shrinks_reads_zeros_and_is_marked_lost_and_the_other_regions_are_untouched()
    {
        Assert.SkipWhen(GuestMemoryFaultGuard.UnavailableReason is not null, GuestMemoryFaultGuard.UnavailableReason ?? string.Empty);
        using SafeFileHandle shrunk = UnsealableMemFd.Create(4 * (long)Page);
        using SafeFileHandle kept = UnsealableMemFd.Create(4 * (long)Page);
        Fd.PWrite(shrunk, "guest"u8, 2 * (long)Page);
        Fd.PWrite(kept, "other"u8, 0);
        using GuestMemory memory = GuestMemory.Create([
            GuestMemoryRegion.Map(shrunk, 0, 4 * Page, 0, 0x7f00_0000_0000),
            GuestMemoryRegion.Map(kept, 0, 4 * Page, 0x10_0000, 0x7f00_1000_0000)]);
        Assert.True("guest"u8.SequenceEqual(memory.GetSpan(2 * Page, 5)));
        Assert.False(memory.Regions[0].IsLost);
        ulong before = GuestMemoryFaultGuard.FaultCount;

        Fd.Truncate(shrunk, (long)Page);

        // The first page is still in the file and still read from it until an access faults.
        Assert.Equal((byte)0, memory.GetSpan(0, 1)[0]);
        Assert.False(memory.Regions[0].IsLost);

        // Past the new end: SIGBUS, caught; the whole region is replaced and reads zeros.
        Assert.Equal((byte)0, memory.GetSpan(2 * Page, 1)[0]);
        Assert.True(memory.Regions[0].IsLost);
        Assert.Equal(before + 1, GuestMemoryFaultGuard.FaultCount);
        memory.Write(3 * Page, "dead"u8);
        Assert.True("dead"u8.SequenceEqual(memory.GetSpan(3 * Page, 4)));

        // The file is not written through the replacement, and the other region is untouched.
        Assert.Equal(Page, (ulong)Fd.Stat(shrunk).Size);
        Assert.False(memory.Regions[1].IsLost);
        Assert.True("other"u8.SequenceEqual(memory.GetSpan(0x10_0000, 5)));
    }

    [Fact]
    public void A_null_reference_still_becomes_a_NullReferenceException()
    {
        _ = GuestMemoryFaultGuard.UnavailableReason;
        object? nothing = Environment.TickCount64 < 0 ? new object() : null;
        Assert.Throws<NullReferenceException>(() => nothing!.GetHashCode());
    }

    /// <summary>
    /// A SIGBUS on a mapping the guard does not own (a shrunk file mapped by someone else) reaches
    /// the runtime, which ends the process with the same fatal AccessViolationException as without
    /// the guard: run in a child process, with and without the guard (the baseline).
    /// </summary>
    [Theory]
    [InlineData("guarded")]
    [InlineData("unguarded")]
    public async Task A_SIGBUS_outside_guest_mappings_still_reaches_the_runtime(string mode)
    {
        var info = new ProcessStartInfo("dotnet") { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        info.ArgumentList.Add(typeof(GuestMemoryFaultGuardTests).Assembly.Location);
        info.ArgumentList.Add("-method");
        info.ArgumentList.Add($"{typeof(GuestMemoryFaultGuardTests).FullName}.{nameof(Child_touches_a_shrunk_mapping_it_did_not_register)}");
        info.ArgumentList.Add("-explicit");
        info.ArgumentList.Add("only");
        info.Environment[ChildVariable] = mode;
        using var child = Process.Start(info)!;
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        limit.CancelAfter(TimeSpan.FromSeconds(60));
        Task<string> stdout = child.StandardOutput.ReadToEndAsync(limit.Token);
        Task<string> stderr = child.StandardError.ReadToEndAsync(limit.Token);
        await child.WaitForExitAsync(limit.Token);
        string output = await stdout + await stderr;
        Assert.Contains($"touching ({mode})", output, StringComparison.Ordinal);
        Assert.DoesNotContain("survived", output, StringComparison.Ordinal);
        Assert.Contains("AccessViolationException", output, StringComparison.Ordinal);
        Assert.Equal(134, child.ExitCode);
    }

    /// <summary>The child of <see cref="A_SIGBUS_outside_guest_mappings_still_reaches_the_runtime"/> (explicit: runs only when asked for).</summary>
    [Fact(Explicit = true)]
    public void Child_touches_a_shrunk_mapping_it_did_not_register()
    {
        string mode = Environment.GetEnvironmentVariable(ChildVariable) ?? "unguarded";
        using SafeFileHandle guest = UnsealableMemFd.Create((long)Page);
        GuestMemoryRegion? region = null;
        if (mode == "guarded")
        {
            // A registered guest mapping, so the guard is installed and has a range to compare with.
            region = GuestMemoryRegion.Map(guest, 0, Page, 0, 0);
            Assert.Null(GuestMemoryFaultGuard.UnavailableReason);
        }

        using SafeFileHandle other = UnsealableMemFd.Create(2 * (long)Page);
        using SafeMmapHandle mapping = SafeMmapHandle.MapShared(other, 0, 2 * Page);
        Fd.Truncate(other, 0);
        Console.Error.WriteLine($"touching ({mode})");
        byte b;
        unsafe
        {
            b = Volatile.Read(ref mapping.Pointer[Page]);
        }

        Console.Error.WriteLine($"survived: {b}");
        region?.Dispose();
    }
}
