namespace Coracle.Plugins.Cni.Flannel;

/// <summary>
/// flannel's iptables rules: chain <c>FLANNEL-POSTRTG</c> (nat) masquerades traffic from the cluster CIDR to outside
/// it and host traffic into it, never pod-to-pod traffic; chain <c>FLANNEL-FWD</c> (filter) accepts forwarding to and
/// from the cluster CIDR. The iptables variant (nft or legacy) is the one the host already uses.
/// </summary>
public static class Masquerade
{
    /// <summary>The nat chain.</summary>
    public const string NatChain = "FLANNEL-POSTRTG";

    /// <summary>The filter chain.</summary>
    public const string ForwardChain = "FLANNEL-FWD";

    private const string MasqComment = "flanneld masq";
    private const string ForwardComment = "flanneld forward";

    /// <summary>The nat rules, in order (without <c>-A CHAIN</c>).</summary>
    public static IReadOnlyList<string[]> NatRules(Ipv4Cidr network, Ipv4Cidr subnet)
    {
        var net = network.ToString();
        var sub = subnet.ToString();
        string[] comment = ["-m", "comment", "--comment", MasqComment];
        return
        [
            // kube-proxy marked it for its own masquerade.
            ["-m", "mark", "--mark", "0x4000/0x4000", .. comment, "-j", "RETURN"],
            // Pod to pod: never masqueraded.
            ["-s", sub, "-d", net, .. comment, "-j", "RETURN"],
            ["-s", net, "-d", sub, .. comment, "-j", "RETURN"],
            ["!", "-s", net, "-d", sub, .. comment, "-j", "RETURN"],
            // Pods to the outside world.
            ["-s", net, "!", "-d", "224.0.0.0/4", .. comment, "-j", "MASQUERADE", "--random-fully"],
            // Hosts to remote pods.
            ["!", "-s", net, "-d", net, .. comment, "-j", "MASQUERADE", "--random-fully"],
        ];
    }

    /// <summary>The filter FORWARD rules (without <c>-A CHAIN</c>).</summary>
    public static IReadOnlyList<string[]> ForwardRules(Ipv4Cidr network) =>
    [
        ["-s", network.ToString(), "-m", "comment", "--comment", ForwardComment, "-j", "ACCEPT"],
        ["-d", network.ToString(), "-m", "comment", "--comment", ForwardComment, "-j", "ACCEPT"],
    ];

    /// <summary>
    /// The iptables binary to use: when both <c>iptables-nft</c> and <c>iptables-legacy</c> exist, the one holding more
    /// nat rules (what kube-proxy's iptables wrapper does), nft on a tie; else whichever exists.
    /// </summary>
    public static async Task<string> DetectVariantAsync(ICommandRunner runner, string? pathVariable, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(runner);
        var hasNft = OnPath("iptables-nft", pathVariable);
        var hasLegacy = OnPath("iptables-legacy", pathVariable);
        if (hasNft && hasLegacy)
        {
            var nft = await CountRulesAsync(runner, "iptables-nft", cancellationToken);
            var legacy = await CountRulesAsync(runner, "iptables-legacy", cancellationToken);
            return legacy > nft ? "iptables-legacy" : "iptables-nft";
        }

        return hasNft ? "iptables-nft" : hasLegacy ? "iptables-legacy" : "iptables";
    }

    /// <summary>Creates or repairs both chains and their jumps; returns how many chains or jumps were changed.</summary>
    public static async Task<int> EnsureAsync(
        ICommandRunner runner, string iptables, Ipv4Cidr network, Ipv4Cidr subnet, CancellationToken cancellationToken)
    {
        var changed = await EnsureChainAsync(runner, iptables, "nat", NatChain, "POSTROUTING", MasqComment, NatRules(network, subnet), cancellationToken);
        changed += await EnsureChainAsync(runner, iptables, "filter", ForwardChain, "FORWARD", ForwardComment, ForwardRules(network), cancellationToken);
        return changed;
    }

    /// <summary>Removes both chains and their jumps; missing ones are fine.</summary>
    public static async Task RemoveAsync(ICommandRunner runner, string iptables, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(runner);
        foreach (var (table, chain, parent, comment) in new[]
                 {
                     ("nat", NatChain, "POSTROUTING", MasqComment),
                     ("filter", ForwardChain, "FORWARD", ForwardComment),
                 })
        {
            var jump = Jump(comment, chain);
            var check = await runner.RunAsync(new KernelCommand(iptables, ["-t", table, "-C", parent, .. jump]), cancellationToken);
            if (check.ExitCode == 0)
            {
                await runner.RunAsync(new KernelCommand(iptables, ["-t", table, "-D", parent, .. jump]), cancellationToken);
            }

            var exists = await runner.RunAsync(new KernelCommand(iptables, ["-t", table, "-S", chain]), cancellationToken);
            if (exists.ExitCode == 0)
            {
                await runner.RunAsync(new KernelCommand(iptables, ["-t", table, "-F", chain]), cancellationToken);
                await runner.RunAsync(new KernelCommand(iptables, ["-t", table, "-X", chain]), cancellationToken);
            }
        }
    }

    /// <summary>The <c>-S CHAIN</c> lines iptables prints for <paramref name="rules"/>.</summary>
    public static IReadOnlyList<string> Render(string chain, IReadOnlyList<string[]> rules) =>
        rules.Select(rule => new KernelCommand("-A", [chain, .. rule]).ToString()).ToList();

    private static string[] Jump(string comment, string chain) => ["-m", "comment", "--comment", comment, "-j", chain];

    private static async Task<int> EnsureChainAsync(
        ICommandRunner runner, string iptables, string table, string chain, string parent, string comment,
        IReadOnlyList<string[]> rules, CancellationToken cancellationToken)
    {
        var changed = 0;
        var listed = await runner.RunAsync(new KernelCommand(iptables, ["-t", table, "-S", chain]), cancellationToken);
        if (listed.ExitCode != 0)
        {
            await Must(runner, new KernelCommand(iptables, ["-t", table, "-N", chain]), cancellationToken);
        }

        var actual = listed.ExitCode == 0
            ? listed.StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                .Where(line => line.StartsWith("-A ", StringComparison.Ordinal)).ToList()
            : [];
        if (!actual.SequenceEqual(Render(chain, rules), StringComparer.Ordinal))
        {
            changed++;
            await Must(runner, new KernelCommand(iptables, ["-t", table, "-F", chain]), cancellationToken);
            foreach (var rule in rules)
            {
                await Must(runner, new KernelCommand(iptables, ["-t", table, "-A", chain, .. rule]), cancellationToken);
            }
        }

        var jump = Jump(comment, chain);
        var check = await runner.RunAsync(new KernelCommand(iptables, ["-t", table, "-C", parent, .. jump]), cancellationToken);
        if (check.ExitCode != 0)
        {
            changed++;
            await Must(runner, new KernelCommand(iptables, ["-t", table, "-A", parent, .. jump]), cancellationToken);
        }

        return changed;
    }

    private static async Task Must(ICommandRunner runner, KernelCommand command, CancellationToken cancellationToken)
    {
        var result = await runner.RunAsync(command, cancellationToken);
        if (result.ExitCode != 0)
        {
            throw new InvalidOperationException($"{command} failed (exit {result.ExitCode}): {result.StandardError.Trim()}");
        }
    }

    private static async Task<int> CountRulesAsync(ICommandRunner runner, string iptables, CancellationToken cancellationToken)
    {
        var result = await runner.RunAsync(new KernelCommand(iptables, ["-t", "nat", "-S"]), cancellationToken);
        return result.ExitCode != 0 ? 0 : result.StandardOutput.Split('\n').Count(l => l.StartsWith("-A ", StringComparison.Ordinal));
    }

    internal static bool OnPath(string name, string? pathVariable) =>
        (pathVariable ?? Environment.GetEnvironmentVariable("PATH") ?? "/usr/sbin:/usr/bin:/sbin:/bin")
            .Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Any(dir => File.Exists(Path.Combine(dir, name)));
}
