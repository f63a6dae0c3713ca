namespace Vhost.IntegrationTests;

/// <summary>
/// Entry point of the test exe: <c>guest-probe</c> runs <see cref="GuestProbe"/> (a small program
/// meant to run inside the test guest); anything else goes to the xunit in-process runner, as the
/// generated entry point would.
/// </summary>
internal static class Program
{
    public static int Main(string[] args)
    {
        if (args.Length > 0 && args[0] == GuestProbe.Command)
        {
            return GuestProbe.Run();
        }

        return Xunit.Runner.InProc.SystemConsole.ConsoleRunner.Run(args).GetAwaiter().GetResult();
    }
}
