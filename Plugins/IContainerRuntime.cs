namespace Coracle.Plugins;

/// <summary>The container runtime extension point (CRI). Exactly one is active.</summary>
public interface IContainerRuntime
{
    /// <summary>
    /// Writes the runtime's configuration, registers its components and returns the CRI endpoint.
    /// </summary>
    /// <param name="context">The host context.</param>
    /// <param name="options">What the other extension points contribute (handlers, CNI folders).</param>
    RuntimeEndpoint Configure(IPluginContext context, RuntimeOptions options);
}

/// <summary>What other plugins contribute to the runtime's configuration.</summary>
public sealed record RuntimeOptions
{
    /// <summary>Extra runtime handlers from runtime-handler plugins.</summary>
    public IReadOnlyList<RuntimeHandler> Handlers { get; init; } = [];

    /// <summary>Where the CNI plugin binaries are; null when no CNI plugin is active.</summary>
    public string? CniBinDir { get; init; }

    /// <summary>Where the CNI configuration is written; null when no CNI plugin is active.</summary>
    public string? CniConfDir { get; init; }
}

/// <summary>Where the kubelet reaches the runtime.</summary>
/// <param name="CriSocket">The CRI unix socket path.</param>
/// <param name="ComponentName">The supervised component to wait for.</param>
public sealed record RuntimeEndpoint(string CriSocket, string ComponentName);

/// <summary>A named runtime handler (a RuntimeClass handler), for example <c>nvidia</c>.</summary>
/// <param name="Name">The handler name pods select through a RuntimeClass.</param>
/// <param name="BinaryPath">The OCI runtime binary (runc-compatible).</param>
public sealed record RuntimeHandler(string Name, string BinaryPath)
{
    /// <summary>The container runtime's own name for how it runs <see cref="BinaryPath"/>; empty: the runtime's runc-compatible default.</summary>
    public string RuntimeType { get; init; } = "";
}
