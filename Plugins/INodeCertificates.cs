namespace Coracle.Plugins;

/// <summary>Where the node's certificate material lives. Files are PEM; keys are mode 0600.</summary>
public interface INodeCertificates
{
    /// <summary>The folder holding the node's certificates (<c>DATA/server/tls</c> or <c>DATA/agent</c>).</summary>
    string Directory { get; }

    /// <summary>
    /// The certificate, key and CA files of a named identity (for example <c>datastore</c>), or null when
    /// this node has none.
    /// </summary>
    TlsFiles? Get(string identity);
}

/// <summary>A certificate, its key and the CA that signs peers.</summary>
public sealed record TlsFiles(string CertFile, string KeyFile, string CaFile);
