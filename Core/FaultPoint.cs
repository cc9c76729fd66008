using System.Diagnostics;
using Microsoft.Extensions.Logging;

namespace Coracle.Core;

/// <summary>
/// The crash tests' fault points: when the environment variable <c>variable</c> names <c>point</c>, the process logs it
/// and kills itself with SIGKILL, as a power cut would (<c>CORACLE_UPDATE_FAULT</c>, <c>CORACLE_MIGRATION_FAULT</c>).
/// </summary>
internal static class FaultPoint
{
    public static void At(string variable, string point, ILogger log, Action<ILogger, string> logFault)
    {
        if (Environment.GetEnvironmentVariable(variable) == point)
        {
            logFault(log, point);
            using var self = Process.GetCurrentProcess();
            self.Kill();
            Thread.Sleep(Timeout.Infinite);
        }
    }
}
