using System.Diagnostics;
using Microsoft.Extensions.Logging;

namespace Coracle.Plugins.LoadBalancer.ServiceLb;

/// <summary>
/// Applies and removes <see cref="IptablesRules"/> with the host's iptables (<c>iptables</c>, <c>iptables-restore</c>),
/// optionally through a command prefix (tests run it as <c>ip netns exec NAME</c>). Changes are logged before they run.
/// </summary>
internal sealed class Iptables(ILogger logger, IReadOnlyList<string>? prefix = null, string variant = "iptables")
{
    private readonly IReadOnlyList<string> _prefix = prefix ?? [];

    /// <summary>The iptables variants present on this host, for cleanup (rules may be in either).</summary>
    public static IReadOnlyList<string> VariantsOnPath()
    {
        var path = Environment.GetEnvironmentVariable("PATH") ?? "/usr/sbin:/usr/bin:/sbin:/bin";
        var found = new[] { "iptables-nft", "iptables-legacy" }
            .Where(v => path.Split(':').Any(d => d.Length > 0 && File.Exists(Path.Combine(d, v))))
            .ToList();
        return found.Count > 0 ? found : ["iptables"];
    }

    /// <summary>
    /// Replaces the chains' rules with <paramref name="forwards"/>' and makes sure the jumps are there. <paramref name="quiet"/>
    /// skips logging the restore (a periodic repair that changes nothing); an inserted jump is always logged.
    /// </summary>
    public async Task ApplyAsync(IReadOnlyList<Forward> forwards, CancellationToken cancellationToken, bool quiet = false)
    {
        await RunAsync(variant + "-restore", ["--noflush"], IptablesRules.RestoreInput(forwards), change: true, cancellationToken, quiet: quiet);
        foreach (var (parent, target) in IptablesRules.Jumps)
        {
            string[] jump = [parent, "-m", "comment", "--comment", IptablesRules.JumpComment, "-j", target];
            var check = await RunAsync(variant, ["-w", "-t", "nat", "-C", .. jump], null, change: false, cancellationToken, throwOnError: false);
            if (check != 0)
            {
                // First in the chain: a node address is DNATed here before kube-proxy's KUBE-SERVICES could see it.
                await RunAsync(variant, ["-w", "-t", "nat", "-I", parent, "1", .. jump[1..]], null, change: true, cancellationToken);
            }
        }
    }

    /// <summary>Removes the jumps and both chains; what is already gone is fine.</summary>
    public async Task RemoveAsync(CancellationToken cancellationToken)
    {
        foreach (var (parent, target) in IptablesRules.Jumps)
        {
            string[] jump = [parent, "-m", "comment", "--comment", IptablesRules.JumpComment, "-j", target];
            for (var i = 0; i < 16; i++)
            {
                if (await RunAsync(variant, ["-w", "-t", "nat", "-D", .. jump], null, change: true, cancellationToken, throwOnError: false, quiet: true) != 0)
                {
                    break;
                }
            }
        }

        foreach (var chain in new[] { IptablesRules.Chain, IptablesRules.PostChain })
        {
            if (await RunAsync(variant, ["-w", "-t", "nat", "-F", chain], null, change: true, cancellationToken, throwOnError: false, quiet: true) == 0)
            {
                await RunAsync(variant, ["-w", "-t", "nat", "-X", chain], null, change: true, cancellationToken, throwOnError: false);
            }
        }
    }

    private async Task<int> RunAsync(
        string file, string[] arguments, string? input, bool change, CancellationToken cancellationToken, bool throwOnError = true, bool quiet = false)
    {
        var all = _prefix.Concat([file]).Concat(arguments).ToList();
        if (change && !quiet)
        {
            Log.Running(logger, string.Join(' ', all));
        }

        var start = new ProcessStartInfo(all[0])
        {
            RedirectStandardInput = input is not null,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in all.Skip(1))
        {
            start.ArgumentList.Add(a);
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException($"{file} did not start");
        if (input is not null)
        {
            await process.StandardInput.WriteAsync(input.AsMemory(), cancellationToken);
            process.StandardInput.Close();
        }

        var stdout = process.StandardOutput.ReadToEndAsync(cancellationToken);
        var stderr = process.StandardError.ReadToEndAsync(cancellationToken);
        await process.WaitForExitAsync(cancellationToken);
        var error = (await stderr).Trim();
        _ = await stdout;
        if (process.ExitCode != 0 && throwOnError)
        {
            throw new InvalidOperationException($"{string.Join(' ', all)} failed (exit {process.ExitCode}): {error}");
        }

        return process.ExitCode;
    }
}
