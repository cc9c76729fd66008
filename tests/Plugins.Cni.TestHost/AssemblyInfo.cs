using System.Runtime.Versioning;

// Runs the flannel data plane inside Linux network namespaces.
[assembly: SupportedOSPlatform("linux")]
