using Vhost.Fuzz;

namespace Vhost.HostileTests.Fuzz;

/// <summary>
/// The CI part of fuzzing (no fuzzer needed): every seed of every corpus (fuzz/corpus/TARGET/) and
/// every regression input (fuzz/regressions/TARGET/) runs through the same target code the AFL++
/// harness runs, and must end accepted or with an exception the target's contract allows
/// (<see cref="FuzzTargets.IsAllowed"/>); no hang (each target bounds its waits and its loops and
/// throws <see cref="FuzzContractException"/>), no fd left open.
/// </summary>
[Collection("FdCount")]
public sealed class CorpusReplayTests
{
    public static TheoryData<string, string> Inputs()
    {
        var data = new TheoryData<string, string>();
        foreach ((string target, string path) in FuzzInputs.All())
        {
            data.Add(target, Path.GetRelativePath(FuzzInputs.FuzzRoot, path));
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Inputs))]
    public async Task Input_ends_accepted_or_with_an_allowed_exception(string target, string relativePath)
    {
        byte[] input = await File.ReadAllBytesAsync(Path.Combine(FuzzInputs.FuzzRoot, relativePath), TestContext.Current.CancellationToken);
        Task<Exception?> run = Task.Run(() => FuzzTargets.RunChecked(target, input), TestContext.Current.CancellationToken);
        Task first = await Task.WhenAny(run, Task.Delay(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken));
        Assert.True(first == run, $"{target} hung on {relativePath}");

        // RunChecked rethrows anything the contract does not allow: the await throws it here.
        Exception? refused = await run;
        Assert.True(refused is null || FuzzTargets.IsAllowed(target, refused));
    }

    [Fact]
    public void Every_target_has_seeds()
    {
        foreach (string target in FuzzTargets.Names)
        {
            Assert.True(FuzzInputs.All().Count(i => i.Target == target) >= 5, $"fuzz/corpus/{target} has fewer than 5 seeds");
        }
    }

    [Fact]
    public void Replaying_every_input_leaves_no_fd_open()
    {
        // Warm-up: what a target keeps for the process (the blk disk memfd of `config`) and lazily
        // loaded code are opened before the count.
        foreach ((string target, string path) in FuzzInputs.All())
        {
            FuzzTargets.RunChecked(target, File.ReadAllBytes(path));
        }

        int before = OpenFds.Count();
        foreach ((string target, string path) in FuzzInputs.All())
        {
            FuzzTargets.RunChecked(target, File.ReadAllBytes(path));
        }

        Assert.Equal(before, OpenFds.Count());
    }

    [Fact]
    public void The_contract_refuses_what_it_must()
    {
        Assert.False(FuzzTargets.IsAllowed("split-chain", new NullReferenceException()));
        Assert.False(FuzzTargets.IsAllowed("message", new FuzzContractException("hang")));
        Assert.False(FuzzTargets.IsAllowed("split-chain", new VhostException("not a ring error")));
        Assert.True(FuzzTargets.IsAllowed("message", new Vhost.User.VhostUserProtocolException("bad")));
        Assert.Throws<ArgumentException>(() => FuzzTargets.Run("no-such-target", []));
    }
}
