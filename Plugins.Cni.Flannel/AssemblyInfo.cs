using System.Runtime.Versioning;

// Flannel programs the Linux kernel (vxlan, routes, neighbours, FDB, iptables).
[assembly: SupportedOSPlatform("linux")]
