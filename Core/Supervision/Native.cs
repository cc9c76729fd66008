using System.Runtime.InteropServices;

namespace Coracle.Core.Supervision;

/// <summary>The few libc calls the supervisor needs.</summary>
internal static partial class Native
{
    public const int SigTerm = 15;
    public const int SigKill = 9;

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int KillNative(int pid, int signal);

    /// <summary>Sends a signal; false when the process is already gone.</summary>
    public static bool Kill(int pid, int signal) => KillNative(pid, signal) == 0;

    public static bool IsAlive(int pid) => KillNative(pid, 0) == 0;
}
