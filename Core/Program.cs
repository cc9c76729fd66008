using System.CommandLine;
using Coracle.Core;
using Coracle.Core.Cli;

// kubectl and ctr take the rest of the command line as it is (their own flags included).
if (args.Length > 0 && args[0] is "kubectl" or "ctr")
{
    return await Coracle.Core.Node.NodeTools.RunAsync(args[0], args[1..]);
}

// Plugins declare settings, and settings are flags: the plugins are loaded before the arguments are parsed.
var plugins = Coracle.Core.Hosting.PluginComposition.ForCommandLine(args, Commands.Environ());
var root = CommandLineBuilder.Build(plugins.Settings);
var result = root.Parse(args);
if (result.Errors.Count > 0)
{
    foreach (var error in result.Errors)
    {
        Console.Error.WriteLine($"coracle: error: {error.Message}; see 'coracle --help'");
    }

    return ExitCodes.InvalidConfig;
}

// Signals are handled by the node host itself (graceful, ordered stop), not by System.CommandLine.
return await result.InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = null });
