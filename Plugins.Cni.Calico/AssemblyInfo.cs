using System.Runtime.Versioning;

// Calico's node agent and CNI plugins are Linux-only.
[assembly: SupportedOSPlatform("linux")]
