using System.Globalization;
using System.Text;

namespace Coracle.Plugins.LoadBalancer.ServiceLb;

/// <summary>
/// ServiceLB's iptables state, all in the nat table and all in chains it owns: <see cref="Chain"/> (jumped from
/// PREROUTING and OUTPUT) DNATs a node address and port to the Service's ready endpoints, one picked at random like
/// kube-proxy does; <see cref="PostChain"/> (jumped from POSTROUTING) masquerades that traffic unless the Service keeps
/// the client address (<c>externalTrafficPolicy: Local</c>, whose endpoints are on this node, so replies pass it anyway).
/// </summary>
internal static class IptablesRules
{
    public const string Chain = "CORACLE-SVCLB";

    public const string PostChain = "CORACLE-SVCLB-POSTROUTING";

    /// <summary>The comment on the jumps, which is how they are found again.</summary>
    public const string JumpComment = "coracle servicelb";

    /// <summary>The jumps into the chains: (parent chain, our chain).</summary>
    public static IReadOnlyList<(string Parent, string Target)> Jumps { get; } =
        [("PREROUTING", Chain), ("OUTPUT", Chain), ("POSTROUTING", PostChain)];

    /// <summary>The rules of both chains, in order, each as arguments after <c>-A CHAIN</c>.</summary>
    public static IReadOnlyList<(string Chain, string[] Rule)> Render(IReadOnlyList<Forward> forwards)
    {
        ArgumentNullException.ThrowIfNull(forwards);
        var rules = new List<(string, string[])>();
        foreach (var f in forwards.OrderBy(f => f.Service, StringComparer.Ordinal).ThenBy(f => f.Protocol, StringComparer.Ordinal)
                     .ThenBy(f => f.Port).ThenBy(f => f.NodeIp, StringComparer.Ordinal))
        {
            var proto = f.Protocol.ToLowerInvariant();
            var port = f.Port.ToString(CultureInfo.InvariantCulture);
            string[] comment = ["-m", "comment", "--comment", $"{f.Service}:{(f.PortName.Length == 0 ? port : f.PortName)}"];
            string[] match = ["-d", f.NodeIp + "/32", "-p", proto, "-m", proto, "--dport", port, .. comment];
            var backends = f.Backends.OrderBy(b => b.Ip, StringComparer.Ordinal).ThenBy(b => b.Port).ToList();
            for (var i = 0; i < backends.Count; i++)
            {
                var left = backends.Count - i;
                string[] pick = left == 1
                    ? []
                    : ["-m", "statistic", "--mode", "random", "--probability", (1.0 / left).ToString("0.0000000000", CultureInfo.InvariantCulture)];
                rules.Add((Chain, [.. match, .. pick, "-j", "DNAT", "--to-destination", $"{backends[i].Ip}:{backends[i].Port}"]));
            }

            if (f.Masquerade && backends.Count > 0)
            {
                rules.Add((PostChain,
                [
                    "-p", proto, "-m", "conntrack", "--ctstate", "DNAT", "--ctorigdst", f.NodeIp + "/32", "--ctorigdstport", port,
                    .. comment, "-j", "MASQUERADE",
                ]));
            }
        }

        return rules;
    }

    /// <summary>
    /// The <c>iptables-restore --noflush</c> input that replaces both chains' rules with <paramref name="forwards"/>' and
    /// touches no other chain.
    /// </summary>
    public static string RestoreInput(IReadOnlyList<Forward> forwards)
    {
        var text = new StringBuilder();
        text.Append("*nat\n");
        text.Append(':').Append(Chain).Append(" - [0:0]\n");
        text.Append(':').Append(PostChain).Append(" - [0:0]\n");
        foreach (var (chain, rule) in Render(forwards))
        {
            text.Append("-A ").Append(chain);
            foreach (var arg in rule)
            {
                text.Append(' ').Append(Quote(arg));
            }

            text.Append('\n');
        }

        text.Append("COMMIT\n");
        return text.ToString();
    }

    private static string Quote(string arg) =>
        arg.Length == 0 || arg.Any(c => char.IsWhiteSpace(c) || c is '"' or '\'')
            ? "\"" + arg.Replace("\"", "\\\"", StringComparison.Ordinal) + "\""
            : arg;
}
