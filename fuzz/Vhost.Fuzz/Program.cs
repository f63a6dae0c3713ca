using SharpFuzz;
using Vhost.Fuzz;

// Vhost.Fuzz TARGET            run TARGET under afl-fuzz (SharpFuzz persistent mode; fuzz/run.sh)
// Vhost.Fuzz TARGET FILE...    replay files through TARGET and print each outcome (no fuzzer)
if (args.Length == 0 || !FuzzTargets.Names.Contains(args[0]))
{
    Console.Error.WriteLine($"usage: Vhost.Fuzz TARGET [FILE...]   (targets: {string.Join(", ", FuzzTargets.Names)})");
    return 2;
}

string target = args[0];
if (args.Length > 1)
{
    foreach (string path in args.Skip(1))
    {
        Exception? refused = FuzzTargets.RunChecked(target, File.ReadAllBytes(path));
        Console.WriteLine($"{path}: {(refused is null ? "accepted" : $"refused: {refused.GetType().Name}: {refused.Message}")}");
    }

    return 0;
}

// Fds leaked by a run would pile up in persistent mode: check every 1024 runs against the count
// after the first run (which opens what the targets keep for the process: the blk disk memfd).
int runs = 0;
int baseline = -1;
var buffer = new MemoryStream();
Fuzzer.Run(stream =>
{
    buffer.SetLength(0);
    stream.CopyTo(buffer);
    FuzzTargets.RunChecked(target, buffer.GetBuffer().AsSpan(0, (int)buffer.Length));
    if (runs++ % 1024 == 0)
    {
        int open = Directory.GetFiles("/proc/self/fd").Length;
        if (baseline < 0)
        {
            baseline = open;
        }
        else if (open > baseline + 16)
        {
            throw new FuzzContractException($"{open} fds open after {runs} runs, {baseline} after the first: a run leaks fds");
        }
    }
});
return 0;
