namespace Coracle.Core.Addons;

/// <summary>The manifests controller's settings; the defaults are the server's.</summary>
internal sealed record ManifestsOptions
{
    /// <summary>The field manager of every server-side apply (objects and Addons).</summary>
    public const string FieldManager = "coracle-manifests";

    /// <summary>The Events' <c>source.component</c>.</summary>
    public const string Component = "coracle-manifests";

    /// <summary>The folder applied: <c>DATA/server/manifests</c>.</summary>
    public required string Folder { get; init; }

    /// <summary>This node's name: the Lease's holder identity and the Events' <c>source.host</c>.</summary>
    public required string Identity { get; init; }

    /// <summary>Where the Addons, the Lease and the Events live.</summary>
    public string Namespace { get; init; } = "kube-system";

    public string LeaseName { get; init; } = "coracle-manifests";

    /// <summary>How long a holder that stopped renewing keeps the Lease (client-go's default, 15 s).</summary>
    public TimeSpan LeaseDuration { get; init; } = TimeSpan.FromSeconds(15);

    /// <summary>How often the Lease is renewed, or tried by a server standing by (client-go's retry period, 2 s).</summary>
    public TimeSpan LeaseRetry { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>The periodic rescan beside the file watcher (the safety net for a missed notification).</summary>
    public TimeSpan Rescan { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>The first wait before a failed file is tried again; it doubles up to <see cref="RetryMax"/> (a changed file is tried at once).</summary>
    public TimeSpan RetryMin { get; init; } = TimeSpan.FromSeconds(2);

    public TimeSpan RetryMax { get; init; } = TimeSpan.FromMinutes(2);

    /// <summary>How long after a file notification the pass starts, so a writer can finish.</summary>
    public TimeSpan Settle { get; init; } = TimeSpan.FromMilliseconds(300);

    /// <summary>How often the add-ons' workloads and pods are read for <c>coracle status</c> (also after a file is applied).</summary>
    public TimeSpan StatusInterval { get; init; } = TimeSpan.FromSeconds(15);

    /// <summary>Add-on plugins that are off, name → why (<c>disabled by --disable</c>): <c>coracle status</c> lists them as disabled.</summary>
    public IReadOnlyDictionary<string, string> Off { get; init; } = new Dictionary<string, string>();

    /// <summary>How long a CustomResourceDefinition (Coracle's own, or one in a file) may take to become Established.</summary>
    public TimeSpan EstablishTimeout { get; init; } = TimeSpan.FromSeconds(30);
}
