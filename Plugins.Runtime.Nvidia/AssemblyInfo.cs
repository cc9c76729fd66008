using System.Runtime.Versioning;

// containerd, runc and the NVIDIA container toolkit are Linux-only.
[assembly: SupportedOSPlatform("linux")]
