using Coracle.Plugins;

namespace Coracle.Core.Hosting;

/// <summary>
/// The node's certificate folder. An identity NAME is <c>NAME.crt</c> + <c>NAME.key</c> signed by the CA in
/// <c>NAME-ca.crt</c> (falling back to <c>server-ca.crt</c>); missing files mean the node has no such identity.
/// </summary>
internal sealed class NodeCertificates : INodeCertificates
{
    public NodeCertificates(string directory)
    {
        Directory = directory;
    }

    public string Directory { get; }

    public TlsFiles? Get(string identity)
    {
        var cert = Path.Combine(Directory, identity + ".crt");
        var key = Path.Combine(Directory, identity + ".key");
        var ca = Path.Combine(Directory, identity + "-ca.crt");
        if (!File.Exists(ca))
        {
            ca = Path.Combine(Directory, "server-ca.crt");
        }

        return File.Exists(cert) && File.Exists(key) && File.Exists(ca) ? new TlsFiles(cert, key, ca) : null;
    }
}
