using System.Runtime.CompilerServices;
using System.Runtime.Versioning;

[assembly: SupportedOSPlatform("linux")]
[assembly: InternalsVisibleTo("Coracle.Core.Tests")]
[assembly: InternalsVisibleTo("Coracle.Integration.Tests")]
[assembly: InternalsVisibleTo("Coracle.Node.Tests")]
[assembly: InternalsVisibleTo("Coracle.Bench.Tunnel")]
[assembly: InternalsVisibleTo("Coracle.Plugins.Datastore.Etcd.Tests")]
