using Coracle.Core.Cli;
using Coracle.Core.Status;

namespace Coracle.Core.Tests.Cli;

/// <summary>The add-ons table of <c>coracle status</c>.</summary>
public sealed class StatusAddonTableTests
{
    [Fact]
    public void AddonTable_EveryState_OneAlignedRowEach()
    {
        var table = Commands.AddonTable(
        [
            new AddonView("coredns", "coredns.yaml", "applied", 8, 1, 1, [], ""),
            new AddonView("metrics-server", "metrics-server.yaml", "applied", 10, 0, 1, ["docker.io/rancher/mirrored-metrics-server:v0.6.4"],
                "image missing: docker.io/rancher/mirrored-metrics-server:v0.6.4 (put it in DATA/agent/images or a registry)"),
            new AddonView("broken", "broken.yaml", "failed", 0, null, null, [], "broken.yaml:4:1: did not find expected ',' or '}'"),
            new AddonView("traefik", "traefik.yaml", "skipped", 3, null, null, [], "traefik.yaml.skip is present: not applied"),
            new AddonView("local-storage", "", "disabled", 0, null, null, [], "disabled by --disable"),
            new AddonView("new", "new.yaml", "pending", 0, null, null, [], "not applied yet"),
        ]);

        Assert.Equal(
            """
            ADDON           STATE     OBJECTS  PODS  DETAIL
            coredns         applied   8        1/1
            metrics-server  applied   10       0/1   image missing: docker.io/rancher/mirrored-metrics-server:v0.6.4 (put it in DATA/agent/images or a registry)
            broken          failed    0        -     broken.yaml:4:1: did not find expected ',' or '}'
            traefik         skipped   3        -     traefik.yaml.skip is present: not applied
            local-storage   disabled  -        -     disabled by --disable
            new             pending   -        -     not applied yet

            """.Replace("\r\n", "\n", StringComparison.Ordinal),
            table);
    }
}
