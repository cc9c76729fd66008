using System.Runtime.Versioning;

// The embedded etcd is a Linux process with Unix file modes on its data.
[assembly: SupportedOSPlatform("linux")]
