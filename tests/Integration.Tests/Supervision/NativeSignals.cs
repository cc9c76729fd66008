using Coracle.Core.Supervision;

namespace Coracle.Integration.Tests.Supervision;

internal static class NativeSignals
{
    public static void Terminate(int pid) => Native.Kill(pid, Native.SigTerm);
}
