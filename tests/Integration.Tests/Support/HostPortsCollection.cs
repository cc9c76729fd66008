using Xunit;

namespace Coracle.Integration.Tests.Support;

/// <summary>
/// Test classes that run <c>coracle server</c> in the host's network namespace on its default ports (9345 for the join
/// API, 6443, the datastore's): they take turns, since two servers at once would fight over the ports.
/// </summary>
[CollectionDefinition(Name)]
public sealed class HostPortsCollection
{
    public const string Name = "coracle server on the host's default ports";
}
