namespace Coracle.Core.Tunnel;

/// <summary>How the egress proxy serves one CONNECT.</summary>
internal enum EgressRouteKind
{
    /// <summary>A TCP connection from this server.</summary>
    Direct,

    /// <summary>A stream through a node's tunnel.</summary>
    Tunnel,

    /// <summary>Refused with an HTTP error status.</summary>
    Refuse,
}
